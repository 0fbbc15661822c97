"""The schema's history (Alembic), shipped in the wheel so `seedbot db upgrade` works from any directory."""

# Every revision in versions/, and the newest. `seedbot run` compares the database's alembic_version with them
# without loading Alembic (bot.storage.revision); tests/core/test_migrations.py holds them equal to Alembic's
# own history, so a new migration that is not added here fails there.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")  # oldest first
HEAD = REVISIONS[-1]
