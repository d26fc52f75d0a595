"""token lifecycle: per-TI token watermark and used workload tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.add_column(sa.Column("tokens_not_before", sa.Float(), nullable=True))
    op.create_table(
        "used_workload_tokens",
        sa.Column("jti", sa.String(length=128), nullable=False),
        sa.Column("ti_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_used_workload_tokens")),
    )
    op.create_index(
        op.f("ix_used_workload_tokens_expires_at"), "used_workload_tokens", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_used_workload_tokens_expires_at"), table_name="used_workload_tokens")
    op.drop_table("used_workload_tokens")
    with op.batch_alter_table("task_instances") as batch_op:
        batch_op.drop_column("tokens_not_before")
