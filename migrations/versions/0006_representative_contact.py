"""the representative's own name and phone

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("representations") as batch:
        batch.add_column(sa.Column("contact_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("contact_phone", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("representations") as batch:
        batch.drop_column("contact_phone")
        batch.drop_column("contact_name")
