# The platform image: web (gunicorn), Celery worker and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app:/app/platform \
    DJANGO_SETTINGS_MODULE=arena.settings \
    ARENA_VAR_DIR=/var/lib/arena \
    ARENA_ARTIFACT_DIR=/artifacts \
    ARENA_DATA_DIR=/data

WORKDIR /app

# Dependencies first (cached while only the platform's code changes).
COPY pyproject.toml README.md ./
COPY evaluator ./evaluator
COPY reference_models ./reference_models
RUN pip install --no-cache-dir '.[platform]'

COPY manage.py ./
COPY platform ./platform
COPY submissions ./submissions

# Never run as root: uploads are untrusted. Artifacts and datasets live on volumes outside /app,
# and nothing under them is ever served.
RUN useradd --system --create-home --uid 1000 arena \
    && mkdir -p /var/lib/arena /artifacts /data \
    && chown -R arena /var/lib/arena /artifacts /data
USER arena

EXPOSE 8000
CMD ["gunicorn", "arena.wsgi", "--pythonpath", "platform", "--bind", "0.0.0.0:8000", "--workers", "3"]
