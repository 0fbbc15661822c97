"""The schema's history (Alembic), shipped in the wheel so `seedbot db upgrade` works from any directory."""

# The newest revision in versions/. `seedbot run` compares the database's alembic_version with it without
# loading Alembic (bot.storage.revision); tests/core/test_migrations.py holds it equal to Alembic's own head,
# so a new migration that forgets it fails there.
HEAD = "0008"
