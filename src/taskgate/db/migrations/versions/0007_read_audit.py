"""read_audit: every read of a variable or connection by a task

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

AUDIT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "read_audit",
        sa.Column("id", AUDIT_ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ti_id", sa.Uuid(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=250), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=50), nullable=True),
        sa.Column("hostname", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_read_audit")),
    )
    op.create_index(op.f("ix_read_audit_at"), "read_audit", ["at"])
    op.create_index(op.f("ix_read_audit_ti_id"), "read_audit", ["ti_id"])
    op.create_index(op.f("ix_read_audit_dag_id_at"), "read_audit", ["dag_id", "at"])
    op.create_index(op.f("ix_read_audit_key"), "read_audit", ["key"])


def downgrade() -> None:
    op.drop_table("read_audit")
