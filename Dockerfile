FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY bot ./bot
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install --no-cache-dir .
RUN useradd --create-home seedbot
USER seedbot
EXPOSE 3000
HEALTHCHECK CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:3000/healthz')" || exit 1
# PostgreSQL schemas are migrated explicitly; `seedbot db upgrade` is idempotent, so running it on start is safe
# for a single replica. With several replicas, run it once as a job before rolling them out.
CMD ["sh", "-c", "seedbot db upgrade && exec seedbot run"]
