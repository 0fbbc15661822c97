FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY bot ./bot
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install --no-cache-dir .
RUN useradd --create-home seedbot && mkdir /data && chown seedbot /data
USER seedbot
# /app belongs to root, so the default SQLite file (seedbot.db in the working directory) could not be created
# there; with no DATABASE_URL set, the database lives in the /data volume, which survives a new image.
ENV DATABASE_URL=sqlite+aiosqlite:////data/seedbot.db
VOLUME /data
EXPOSE 3000
HEALTHCHECK CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SEEDBOT_HTTP_PORT', '3000'), timeout=10)" || exit 1
# PostgreSQL schemas are migrated explicitly; `seedbot db upgrade` is idempotent, so running it on start is safe
# for a single replica. With several replicas, run it once as a job before rolling them out.
CMD ["sh", "-c", "seedbot db upgrade && exec seedbot run"]
