"""The schema's history (Alembic), shipped in the wheel so `seedbot db upgrade` works from any directory."""
