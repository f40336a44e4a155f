"""People: Telegram accounts, riders, representatives, consents and invites."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.sealed import SealedDate, open_text


class Account(Base):
    """A Telegram user who talked to the bot: a rider, a representative or a dispatcher."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    language: Mapped[str | None] = mapped_column(String(2))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    consent_version: Mapped[str | None] = mapped_column(String(16))
    consent_at: Mapped[datetime | None]
    # "rider" or "representative": what the person said at first contact.
    role: Mapped[str | None] = mapped_column(String(16))
    unreachable_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Consent(Base):
    """Proof of consent to personal-data processing: the exact text, when, and who gave it."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    rider_id: Mapped[int | None] = mapped_column(ForeignKey("riders.id", ondelete="SET NULL"))
    version: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2))
    text: Mapped[str] = mapped_column(Text)
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]


class Rider(Base):
    """A person entitled to rides; may have no Telegram account (a child, an elderly parent)."""

    __tablename__ = "riders"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), unique=True
    )
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(16))
    iin_encrypted: Mapped[str] = mapped_column(Text)
    # Keyed hash (HMAC) of the IIN: finds duplicates without storing the IIN in clear.
    iin_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sealed: the birth date is the IIN's first six digits (see models.sealed).
    birth_date: Mapped[date | None] = mapped_column("birth_date_sealed", SealedDate)
    home_address: Mapped[str] = mapped_column(String(300))
    home_lat: Mapped[float | None]
    home_lon: Mapped[float | None]
    category: Mapped[str] = mapped_column(String(32))
    centre_name: Mapped[str | None] = mapped_column(String(200))
    disability_group: Mapped[int | None]
    vkk_number: Mapped[str] = mapped_column(String(64))
    vkk_expires_on: Mapped[date | None]
    needs_wheelchair: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_walker: Mapped[bool] = mapped_column(Boolean, default=False)
    low_vision: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_assistant: Mapped[bool] = mapped_column(Boolean, default=False)
    usual_assistant: Mapped[bool] = mapped_column(Boolean, default=False)
    usual_companion: Mapped[bool] = mapped_column(Boolean, default=False)
    # pending, verified, rejected
    verification: Mapped[str] = mapped_column(String(16), default="pending")
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[int | None] = mapped_column(BigInteger)
    rejection_reason: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    vkk_notice_30_at: Mapped[datetime | None]
    vkk_notice_7_at: Mapped[datetime | None]
    vkk_expired_notice_at: Mapped[datetime | None]
    # When the rider was told the profile is erased in 30 days for lack of use (retention).
    retention_notice_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Loaded only when asked for (erasing a rider deletes them with it): code that needs the
    # representatives queries them with their accounts, and loading them with every rider cost
    # a second SELECT on nearly every update.
    representatives: Mapped[list[Representation]] = relationship(
        back_populates="rider", cascade="all, delete-orphan", lazy="select"
    )

    @property
    def iin_last4(self) -> str:
        """The IIN's last four digits, read from the ciphertext when shown (never stored)."""
        return open_text(self.iin_encrypted)[-4:]


class Representation(Base):
    """A link between a rider and a person who books for them."""

    __tablename__ = "representations"
    __table_args__ = (UniqueConstraint("rider_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # parent, guardian, attorney, child (son or daughter), spouse, other_relative (registered
    # the rider), relative (linked by the rider's invite)
    relationship_kind: Mapped[str] = mapped_column(String(16))
    # What this person may do for the rider (bot.services.representation.RIGHTS): set when
    # linking and shown in the invitation; "full" for those who registered the rider.
    rights: Mapped[str] = mapped_column(String(16), default="full")
    poa_number: Mapped[str | None] = mapped_column(String(64))
    poa_expires_on: Mapped[date | None]
    # Whom the dispatcher calls about this rider: the representative's own name and phone, as
    # they gave them when registering the rider (None for a relative linked by an invite).
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    rider: Mapped[Rider] = relationship(back_populates="representatives")


class Invite(Base):
    """A one-time deep-link code by which a rider links a relative (valid 24 hours)."""

    __tablename__ = "invites"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id", ondelete="CASCADE"))
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    # The level the relative gets (bot.services.rights), chosen by the rider and shown in it.
    rights: Mapped[str] = mapped_column(String(16), default="rides")
