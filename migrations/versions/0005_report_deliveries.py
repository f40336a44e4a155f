"""report deliveries: the monthly report's claim per month and chat

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-02 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_deliveries",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("queued_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "chat_id", "district_id", name=op.f("pk_report_deliveries")
        ),
    )


def downgrade() -> None:
    op.drop_table("report_deliveries")
