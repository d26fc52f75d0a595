"""operator_sessions: the browser sessions of the operator page

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=250), nullable=True),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("teams", sa.JSON(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_operator_sessions")),
    )
    op.create_index(op.f("ix_operator_sessions_expires_at"), "operator_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("operator_sessions")
