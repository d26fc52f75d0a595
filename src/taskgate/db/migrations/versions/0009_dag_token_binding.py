"""dags.token_binding: whether a DAG's execution tokens must be bound to a key (DPoP)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dags") as batch:
        batch.add_column(sa.Column("token_binding", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dags") as batch:
        batch.drop_column("token_binding")
