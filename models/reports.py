"""Which monthly reports went to whom: the claim that makes the monthly sweep send once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class ReportDelivery(Base):
    """One monthly report owed to one chat, queued once.

    The row is inserted in the same transaction as the outbox row that carries the report; the
    primary key makes a second sweep (after a restart, or in another process) insert nothing and
    so queue nothing.
    """

    __tablename__ = "report_deliveries"

    # "2026-11": the month the report is about (pickup dates, local time).
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The district reported on, or "" for the whole region.
    district_id: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
