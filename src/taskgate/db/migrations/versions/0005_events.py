"""events: the durable feed of TI state changes, revocations and operator actions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=250), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("team", sa.String(length=250), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"])
    op.create_table(
        "event_horizon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purged_through", EVENT_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_horizon")),
    )


def downgrade() -> None:
    op.drop_table("event_horizon")
    op.drop_index(op.f("ix_events_at"), table_name="events")
    op.drop_table("events")
