"""dpop_proof_uses: one B-tree per record (no index on expires_at; SQLite: WITHOUT ROWID)

Every DPoP-bound request inserts a record with a random key. Each index the row enters
is another page written per request, and on SQLite a rowid table is one B-tree more
than its primary key: the record's cost was mostly these pages. The purge, every
``TASKGATE_EVENT_PURGE_INTERVAL``, scans the table instead; it holds only the proofs of
the last interval and window. The records are copied, so a proof recorded before the
upgrade is still refused after it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_INDEX = "ix_dpop_proof_uses_expires_at"


def _rebuild(*, with_rowid: bool) -> None:
    """SQLite: the table again, with or without its rowid, with its records."""
    op.create_table(
        "dpop_proof_uses_rebuilt",
        sa.Column("proof_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("proof_id", name=op.f("pk_dpop_proof_uses")),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        "INSERT INTO dpop_proof_uses_rebuilt (proof_id, expires_at) "
        "SELECT proof_id, expires_at FROM dpop_proof_uses"
    )
    op.drop_table("dpop_proof_uses")
    op.rename_table("dpop_proof_uses_rebuilt", "dpop_proof_uses")


def upgrade() -> None:
    op.drop_index(_INDEX, table_name="dpop_proof_uses")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=True)
    op.create_index(_INDEX, "dpop_proof_uses", ["expires_at"])
