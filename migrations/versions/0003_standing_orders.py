"""standing orders

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "standing_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rider_id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("pickup_time", sa.Time(), nullable=False),
        sa.Column("return_time", sa.Time(), nullable=True),
        sa.Column("pickup_address", sa.String(length=300), nullable=False),
        sa.Column("pickup_lat", sa.Double(), nullable=True),
        sa.Column("pickup_lon", sa.Double(), nullable=True),
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("assistant", sa.Boolean(), nullable=False),
        sa.Column("companions", sa.Integer(), nullable=False),
        sa.Column("wheelchair", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=False),
        sa.Column("first_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("proposed_time", sa.Time(), nullable=True),
        sa.Column("proposed_return_time", sa.Time(), nullable=True),
        sa.Column("over_capacity", sa.Boolean(), nullable=False),
        sa.Column("pauses", sa.JSON(), nullable=False),
        sa.Column("time_changes", sa.JSON(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=128), nullable=True),
        sa.Column("decided_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("card_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("card_message_id", sa.BigInteger(), nullable=True),
        sa.Column("vkk_notice_for", sa.Date(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts.id"],
            name=op.f("fk_standing_orders_created_by_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["districts.id"],
            name=op.f("fk_standing_orders_district_id_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["rider_id"],
            ["riders.id"],
            name=op.f("fk_standing_orders_rider_id_riders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_standing_orders_vehicle_id_vehicles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_orders")),
    )
    with op.batch_alter_table("standing_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_standing_orders_district_status", ["district_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_standing_orders_rider_id"), ["rider_id"], unique=False
        )

    with op.batch_alter_table("rides", schema=None) as batch_op:
        batch_op.add_column(sa.Column("standing_order_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("occurrence_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("leg", sa.String(length=8), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_rides_standing_order_id_occurrence_date_leg"),
            ["standing_order_id", "occurrence_date", "leg"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_rides_standing_order_id_standing_orders"),
            "standing_orders",
            ["standing_order_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("districts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("standing_order_max_days", sa.Integer(), nullable=False, server_default="92")
        )
        batch_op.add_column(
            sa.Column(
                "standing_order_capacity_share",
                sa.Float(),
                nullable=False,
                server_default="0.6",
            )
        )
        batch_op.add_column(
            sa.Column("holidays", sa.String(length=8), nullable=False, server_default="skip")
        )


def downgrade() -> None:
    with op.batch_alter_table("districts", schema=None) as batch_op:
        batch_op.drop_column("holidays")
        batch_op.drop_column("standing_order_capacity_share")
        batch_op.drop_column("standing_order_max_days")

    with op.batch_alter_table("rides", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_rides_standing_order_id_standing_orders"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("uq_rides_standing_order_id_occurrence_date_leg"), type_="unique"
        )
        batch_op.drop_column("leg")
        batch_op.drop_column("occurrence_date")
        batch_op.drop_column("standing_order_id")

    with op.batch_alter_table("standing_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_standing_orders_rider_id"))
        batch_op.drop_index("ix_standing_orders_district_status")

    op.drop_table("standing_orders")
