"""dags.access: what a DAG's tasks may read (declared access)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dags") as batch:
        batch.add_column(sa.Column("access", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dags") as batch:
        batch.drop_column("access")
