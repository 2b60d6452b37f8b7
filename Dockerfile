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

# The image's user is not root: the web server and beat run as `arena`. Artifacts live in the
# object store (docker-compose.yml: MinIO; ARENA_ARTIFACT_DIR only with ARENA_ARTIFACT_STORAGE=local),
# datasets on a volume outside /app, and nothing of either is ever served. The scoring and validation
# workers are started as root by docker-compose.yml (`user: "0:0"`, `cap_add: SYS_ADMIN`) so that
# their sandbox child can enter an empty network namespace and drop to `nobody` (uid 65534)
# before it reads a model; with DEBUG off a worker refuses to run models without both
# (ARENA_REQUIRE_ISOLATION).
RUN useradd --system --create-home --uid 1000 arena \
    && mkdir -p /var/lib/arena /artifacts /data \
    && chown -R arena /var/lib/arena /artifacts /data
USER arena

EXPOSE 8000
CMD ["gunicorn", "arena.wsgi", "--pythonpath", "platform", "--bind", "0.0.0.0:8000", "--workers", "3"]
