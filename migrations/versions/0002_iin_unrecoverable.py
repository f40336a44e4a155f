"""nothing stored in clear from which the IIN follows; per-person limits; representatives' rights

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 14:45:00

`riders.iin_last4` and `riders.birth_date` (the IIN's last four and first six digits) are
dropped; the birth date is kept sealed with the data key in `birth_date_sealed`, and the last
digits are read from the encrypted IIN when shown. Sealing existing rows needs the data key:
`bot.migrate.upgrade(url, data_key=...)`, else `DATA_KEY` in the environment, else the
SQLite key file. Without one, a database that holds birth dates is not changed.

Also: `districts.limits` (per-person limits), `representations.rights` and `invites.rights`
(what a representative may do; relatives linked before get "rides", as their invitation said),
`riders.retention_notice_at` and `rides.anonymised_at` (the retention sweep).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

import models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cipher() -> object | None:
    from bot.services.crypto import DataKey, existing_key_file

    secret = context.config.attributes.get("data_key") or os.environ.get("DATA_KEY", "")
    if not str(secret).strip():
        path = existing_key_file(str(context.config.get_main_option("sqlalchemy.url")))
        if path is not None:
            secret = path.read_text(encoding="ascii")
    if not str(secret).strip():
        return None
    return DataKey.from_secret(str(secret)).cipher


def upgrade() -> None:
    bind = op.get_bind()
    riders = sa.table(
        "riders",
        sa.column("id", sa.Integer()),
        sa.column("birth_date", sa.Date()),
        sa.column("birth_date_sealed", sa.Text()),
    )
    # Plain ALTER TABLE (SQLite 3.35+ drops columns itself): a batch copy of a table that
    # others reference would trip the foreign keys the engine turns on.
    op.add_column("riders", sa.Column("birth_date_sealed", sa.Text(), nullable=True))
    rows = bind.execute(
        sa.select(riders.c.id, riders.c.birth_date).where(riders.c.birth_date.is_not(None))
    ).all()
    if rows:
        cipher = _cipher()
        if cipher is None:
            raise RuntimeError(
                "Sealing the stored birth dates needs the data key: set DATA_KEY (or keep the "
                "key file beside the database) and run the migration again"
            )
        for rider_id, born in rows:
            sealed = cipher.encrypt(born.isoformat().encode("utf-8")).decode("ascii")  # type: ignore[attr-defined]
            bind.execute(
                riders.update().where(riders.c.id == rider_id).values(birth_date_sealed=sealed)
            )
    op.drop_column("riders", "birth_date")
    op.drop_column("riders", "iin_last4")
    op.add_column(
        "districts",
        sa.Column("limits", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.add_column(
        "representations",
        sa.Column("rights", sa.String(length=16), nullable=False, server_default="full"),
    )
    op.add_column(
        "invites",
        sa.Column("rights", sa.String(length=16), nullable=False, server_default="rides"),
    )
    op.add_column(
        "riders",
        sa.Column("retention_notice_at", models.base.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "rides", sa.Column("anonymised_at", models.base.UTCDateTime(timezone=True), nullable=True)
    )
    # A relative linked by invite was told "can book rides and get ride messages": that is all.
    op.execute("UPDATE representations SET rights = 'rides' WHERE relationship_kind = 'relative'")


def downgrade() -> None:
    # The clear columns are not brought back with their values: that is the point of 0002.
    op.drop_column("rides", "anonymised_at")
    op.drop_column("riders", "retention_notice_at")
    op.drop_column("invites", "rights")
    op.drop_column("representations", "rights")
    op.drop_column("districts", "limits")
    op.add_column(
        "riders", sa.Column("iin_last4", sa.String(length=4), nullable=False, server_default="")
    )
    op.add_column("riders", sa.Column("birth_date", sa.Date(), nullable=True))
    op.drop_column("riders", "birth_date_sealed")
