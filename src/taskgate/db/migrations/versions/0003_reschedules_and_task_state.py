"""task reschedules and the task state store

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_reschedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ti_id", sa.Uuid(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reschedule_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ti_id"],
            ["task_instances.id"],
            name=op.f("fk_task_reschedules_ti_id_task_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_reschedules")),
    )
    op.create_index(op.f("ix_task_reschedules_ti_id"), "task_reschedules", ["ti_id"])
    op.create_table(
        "task_state_store",
        sa.Column("ti_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ti_id"],
            ["task_instances.id"],
            name=op.f("fk_task_state_store_ti_id_task_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ti_id", "key", name=op.f("pk_task_state_store")),
    )


def downgrade() -> None:
    op.drop_table("task_state_store")
    op.drop_index(op.f("ix_task_reschedules_ti_id"), table_name="task_reschedules")
    op.drop_table("task_reschedules")
