"""dpop_proof_uses: the DPoP proofs already used, so each is accepted once

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dpop_proof_uses",
        sa.Column("proof_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("proof_id", name=op.f("pk_dpop_proof_uses")),
    )
    op.create_index(op.f("ix_dpop_proof_uses_expires_at"), "dpop_proof_uses", ["expires_at"])


def downgrade() -> None:
    op.drop_table("dpop_proof_uses")
