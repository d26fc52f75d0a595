"""Storage: SQLAlchemy 2 (async) models, engine/sessions and Alembic migrations."""
