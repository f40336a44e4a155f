"""district desk phone and hours

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-02 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("districts") as batch:
        batch.add_column(sa.Column("desk_phone", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("desk_hours", sa.String(length=11), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("districts") as batch:
        batch.drop_column("desk_hours")
        batch.drop_column("desk_phone")
