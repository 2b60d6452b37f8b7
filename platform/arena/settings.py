"""Settings of the arena platform, read from environment variables (parsed by ``arena.env``).

With no environment at all the platform runs on the embedded default: a SQLite file and a Celery
broker kept in files (kombu's filesystem transport), both under ``var/`` next to the project, so
``make demo`` needs no server. Set ``DATABASE_URL`` and ``CELERY_BROKER_URL`` for PostgreSQL and Redis.

Importing this module has no side effect: no folder is created here (the artifact storage, the
Celery app and ``manage.py demo`` create theirs when they first need them).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from arena import env
from evaluator.sandbox import parse_isolations as _parse_isolations

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_DIR = REPO_ROOT / "platform"

# Everything the platform writes (database, broker files, artifacts) lives here, never under a
# served path: static files are served from STATIC_ROOT only and artifacts are never served.
VAR_DIR = env.path("ARENA_VAR_DIR", REPO_ROOT / "var")

DEBUG = env.boolean("DEBUG", False)
# Required when DEBUG is off (ImproperlyConfigured otherwise). Under pytest (which sets
# PYTEST_VERSION in its environment) a fixed test key stands in, so the suite needs no setup.
SECRET_KEY = env.secret_key(DEBUG or bool(env.string("PYTEST_VERSION")))
ALLOWED_HOSTS = env.string_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env.string_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as local static files (no CDN)
    "arena.apps.ArenaConfig",
    "accounts",
    "competitions",
    "hardware",
    "submissions",
    "leaderboards",
    "coursework",
    "teams",
    "enrollment",
    "organizer",
    "results",
    "notifications",
    "integrity",
    "api",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A NUL byte in the address or a query parameter is a 400, before any view (admin too).
    "web.middleware.RejectNulBytes",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "arena.urls"
WSGI_APPLICATION = "arena.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DEFAULT_SQLITE = VAR_DIR / "arena.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env.string("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Its folder is created at start-up (arena.apps.ArenaConfig.ready), not here.
    _db_path = Path(DATABASES["default"]["NAME"])
    DATABASES["default"].update(
        CONN_MAX_AGE=0,
        OPTIONS={
            # IMMEDIATE takes the write lock when a transaction starts, so the quota check and the
            # insert that follows are serialized across processes (SQLite has no row locks).
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # The test database is a file too, so worker subprocesses started by a test can open it.
        TEST={"NAME": str(_db_path.with_name(f"test_{_db_path.name}"))},
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Login throttling (django-axes): this many wrong passwords in a row for one username from one
# address lock that pair out (web and admin login) until the cool-off has passed without another
# try; the page says so (registration/locked.html, HTTP 429). Client address: REMOTE_ADDR.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend",
                           "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.integer("ARENA_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env.number("ARENA_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = env.path("ARENA_STATIC_ROOT", VAR_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# whitenoise serves app static files straight from the apps (no collectstatic needed to run).
WHITENOISE_USE_FINDERS = True

# --- E-mail (set-password links, password resets, score notices) --------------------------------
# Printed on the console by default; SMTP when ARENA_EMAIL_HOST is set.
EMAIL_BACKEND = ("django.core.mail.backends.smtp.EmailBackend" if env.string("ARENA_EMAIL_HOST")
                 else "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.string("ARENA_EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("ARENA_EMAIL_PORT", 587)
EMAIL_HOST_USER = env.string("ARENA_EMAIL_USER")
EMAIL_HOST_PASSWORD = env.string("ARENA_EMAIL_PASSWORD")
EMAIL_USE_TLS = env.boolean("ARENA_EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env.number("ARENA_EMAIL_TIMEOUT_S", 10)
DEFAULT_FROM_EMAIL = env.string("ARENA_EMAIL_FROM", "Model Arena <arena@localhost>")
# A roster's set-password e-mail that the mail server refuses is tried again after about this
# many seconds, then twice as long each time (at most 15 minutes apart), ten times in all.
ARENA_MAIL_RETRY_S = env.integer("ARENA_MAIL_RETRY_S", 30)
# The site's address as students reach it, for links in e-mails sent by workers (no request).
ARENA_SITE_URL = env.string("ARENA_SITE_URL", "http://localhost:8000")
# How long a set-password or reset link works (Django's default is 3 days).
PASSWORD_RESET_TIMEOUT = env.integer("ARENA_PASSWORD_LINK_SECONDS", 7 * 24 * 3600)

# --- Uploads and artifacts ------------------------------------------------------------------------
# Uploaded models are stored by content hash (submissions/storage.py) through STORAGES["artifacts"]:
# local files under ARENA_ARTIFACT_DIR (the embedded default), or with ARENA_ARTIFACT_STORAGE=s3 an
# S3-compatible object store (MinIO, Ceph, AWS S3) that web and workers reach over the network, so
# a worker on another host needs no shared disk. Nothing in either is ever served to a browser.
ARENA_ARTIFACT_DIR = env.path("ARENA_ARTIFACT_DIR", VAR_DIR / "artifacts")
ARENA_ARTIFACT_STORAGE = env.string("ARENA_ARTIFACT_STORAGE", "local")
if ARENA_ARTIFACT_STORAGE == "s3":
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.required("ARENA_S3_BUCKET"),
            # Blank: AWS itself; MinIO and other S3-compatible servers: their URL.
            "endpoint_url": env.string("ARENA_S3_ENDPOINT_URL") or None,
            "region_name": env.string("ARENA_S3_REGION", "us-east-1"),
            # Blank: boto3's own chain (instance role, ~/.aws, AWS_* variables).
            "access_key": env.string("ARENA_S3_ACCESS_KEY_ID") or None,
            "secret_key": env.string("ARENA_S3_SECRET_ACCESS_KEY") or None,
            "location": env.string("ARENA_S3_PREFIX", "artifacts"),
            "addressing_style": env.string("ARENA_S3_ADDRESSING_STYLE", "path"),
            "signature_version": "s3v4",
            # Private objects, no signed URLs: artifacts are read by the platform only.
            "default_acl": None,
            "querystring_auth": False,
            "file_overwrite": True,  # a key names its bytes: writing it again changes nothing
        },
    }
elif ARENA_ARTIFACT_STORAGE == "local":
    STORAGES["artifacts"] = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                             "OPTIONS": {"location": str(ARENA_ARTIFACT_DIR), "base_url": None}}
else:
    raise ImproperlyConfigured(
        f"ARENA_ARTIFACT_STORAGE={ARENA_ARTIFACT_STORAGE!r}: use local or s3")
# Parts of 8 MB sent at once by one upload to the object store (each held in memory meanwhile).
ARENA_S3_UPLOAD_THREADS = env.integer("ARENA_S3_UPLOAD_THREADS", 2)
# A worker's own copies of artifacts read from an object store, least recently used dropped first.
ARENA_ARTIFACT_CACHE_DIR = env.path("ARENA_ARTIFACT_CACHE_DIR", VAR_DIR / "artifact-cache")
ARENA_ARTIFACT_CACHE_MB = env.integer("ARENA_ARTIFACT_CACHE_MB", 2048)
ARENA_MAX_UPLOAD_BYTES = env.integer("ARENA_MAX_UPLOAD_BYTES", 64 * 1024 * 1024)
# Large uploads stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Evaluator ------------------------------------------------------------------------------------
# Validate uploads in a locked-down child process (about half a second more per upload).
ARENA_VALIDATE_ISOLATED = env.boolean("ARENA_VALIDATE_ISOLATED", True)
# Uploads are checked by workers of the validation queue ("<ARENA_CELERY_QUEUE>.validate"), never
# in the request. Inline puts the check back in the request: for tests of the web tier only.
ARENA_VALIDATE_INLINE = env.boolean("ARENA_VALIDATE_INLINE", False)
# The gate's wall-clock limit for one file (its child is killed then and the file refused).
ARENA_VALIDATION_TIMEOUT_S = env.number("ARENA_VALIDATION_TIMEOUT_S", 60)
ARENA_VALIDATION_TASK_TIME_LIMIT_S = env.number("ARENA_VALIDATION_TASK_TIME_LIMIT_S",
                                                ARENA_VALIDATION_TIMEOUT_S + 30)
# Beat's sweep of the validation stage (submissions/validation.py): a `received` upload whose task
# was sent this long ago gets another; a `validating` one this old goes back for another try; after
# so many tries, or this long after the upload, it is failed and its slots are given back.
ARENA_VALIDATION_RESEND_AFTER_S = env.number("ARENA_VALIDATION_RESEND_AFTER_S", 60)
ARENA_VALIDATION_STUCK_AFTER_S = env.number("ARENA_VALIDATION_STUCK_AFTER_S",
                                            ARENA_VALIDATION_TASK_TIME_LIMIT_S + 30)
ARENA_VALIDATION_MAX_ATTEMPTS = env.integer("ARENA_VALIDATION_MAX_ATTEMPTS", 3)
ARENA_VALIDATION_GIVE_UP_S = env.number("ARENA_VALIDATION_GIVE_UP_S", 3600)
# What a worker process does: "score" (its hardware class's queue and the default queue) or
# "validate" (the validation queue only; no class, no calibration). Run at least one of each.
ARENA_WORKER_ROLE = env.string("ARENA_WORKER_ROLE", "score")
# Where the prepared datasets live (None: the evaluator's own default).
ARENA_DATA_DIR = env.string("ARENA_DATA_DIR") or None
ARENA_LATENCY_PROTOCOL = env.string("ARENA_LATENCY_PROTOCOL", "standard")
# The evaluator's own limits for one model run (its sandbox child enforces them).
ARENA_SCORING_TIMEOUT_S = env.number("ARENA_SCORING_TIMEOUT_S", 600)
ARENA_SCORING_MEMORY_MB = env.integer("ARENA_SCORING_MEMORY_MB", None)  # None: the evaluator's
# The sandbox isolations a worker requires of its scoring and validation children (names of
# evaluator.sandbox.ISOLATIONS, comma-separated; "none" for none): "network" (a new, empty network
# namespace) and "user" (the model runs as nobody, so the worker must start as root). A worker that
# lacks one refuses to run models (a platform error, never the model's) and says so at start.
# On by default in production (DEBUG off); off with DEBUG, under pytest, and in `manage.py demo`
# (a laptop's worker runs as its user, who cannot drop to nobody).
_ISOLATION_DEFAULT = "none" if DEBUG or env.string("PYTEST_VERSION") else "network,user"
ARENA_REQUIRE_ISOLATION = _parse_isolations(env.string("ARENA_REQUIRE_ISOLATION",
                                                       _ISOLATION_DEFAULT))

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.string("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Kombu's filesystem transport: messages are files in one folder that every process on this
    # machine shares, so a real worker process runs with no broker server at all. The folders
    # are created when the Celery app is configured (arena/celery.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
    }
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    # Redis re-delivers a message whose worker died once this many seconds pass without an ack.
    # Short, so that even without beat a lost scoring token comes back within two minutes; a
    # token of a run still going (longer than this) is delivered again too, which is harmless:
    # the claim is conditional, so the extra token claims the next waiting upload or idles.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.number("ARENA_VISIBILITY_TIMEOUT_S", 120),
    }
# The upload request's publish (submissions.tasks.send_validation): its own connection with these
# socket timeouts and one immediate retry, so an unreachable broker costs an upload about a second
# (measured through gunicorn: refused 1.0 s, a host that never answers 1.5 s) and the student is
# told the upload is saved; beat's sweep sends it once the broker is back.
ARENA_PUBLISH_TIMEOUT_S = env.number("ARENA_PUBLISH_TIMEOUT_S", 1.0)
ARENA_PUBLISH_TRANSPORT_OPTIONS = {"socket_connect_timeout": ARENA_PUBLISH_TIMEOUT_S,
                                   "socket_timeout": ARENA_PUBLISH_TIMEOUT_S}  # Redis
ARENA_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1,
                              "interval_max": 0.1}
# One queue name per deployment (tests use their own so they never share messages). Every worker
# also reads "<this>.<its hardware class>" (platform/hardware): scoring tokens go to the queue
# of the class that scores the track; this one carries the rest.
CELERY_TASK_DEFAULT_QUEUE = env.string("ARENA_CELERY_QUEUE", "arena")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The scoring task's limits: the soft one lets the task mark the run failed and retry; the hard
# one kills a stuck child. Both sit above the evaluator's own timeout.
ARENA_TASK_SOFT_TIME_LIMIT_S = env.number("ARENA_TASK_SOFT_TIME_LIMIT_S", ARENA_SCORING_TIMEOUT_S + 60)
ARENA_TASK_TIME_LIMIT_S = env.number("ARENA_TASK_TIME_LIMIT_S", ARENA_TASK_SOFT_TIME_LIMIT_S + 60)
# A submission in `scoring` for longer than this is taken to be lost with its worker and re-queued.
ARENA_STUCK_AFTER_S = env.number("ARENA_STUCK_AFTER_S", ARENA_TASK_TIME_LIMIT_S + 60)
# A scoring run's worker touches its submission every ARENA_HEARTBEAT_EVERY_S; a run silent for
# ARENA_HEARTBEAT_TIMEOUT_S is taken for lost (its worker died) and is claimable again, so beat's
# sweep every ARENA_REQUEUE_EVERY_S re-queues it within timeout + period (measured: claimed again
# 65 s after a SIGKILL, tests/integration/test_platform_queue.py). ARENA_STUCK_AFTER_S stays the limit for a run
# whose worker lives but never ends.
ARENA_HEARTBEAT_EVERY_S = env.number("ARENA_HEARTBEAT_EVERY_S", 10)
ARENA_HEARTBEAT_TIMEOUT_S = env.number("ARENA_HEARTBEAT_TIMEOUT_S", 60)
ARENA_REQUEUE_EVERY_S = env.number("ARENA_REQUEUE_EVERY_S", 30)
ARENA_SCORING_MAX_RETRIES = env.integer("ARENA_SCORING_MAX_RETRIES", 5)
ARENA_SCORING_RETRY_BACKOFF_S = env.number("ARENA_SCORING_RETRY_BACKOFF_S", 30)
# The fair queue (submissions/queue.py): a student's uploads claimed within this many seconds
# count against their next upload's turn.
ARENA_FAIR_WINDOW_S = env.number("ARENA_FAIR_WINDOW_S", 3600)
# A worker measures the reference latency of its class's tasks when it starts (once per class);
# off, normalized latency is missing until a scoring run calibrates the task.
ARENA_CALIBRATE_AT_START = env.boolean("ARENA_CALIBRATE_AT_START", True)
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-submissions": {
        "task": "submissions.tasks.requeue_stuck_submissions",
        "schedule": ARENA_REQUEUE_EVERY_S,
        # The validation queue: short tasks only, so the sweep never waits behind a scoring run.
        "options": {"queue": f"{CELERY_TASK_DEFAULT_QUEUE}.validate"},
    },
}
# Score and rejection e-mails to students (platform/notifications), sent by the same sweep style.
CELERY_BEAT_SCHEDULE["send-result-emails"] = {
    "task": "notifications.tasks.send_result_emails",
    "schedule": env.number("ARENA_RESULT_EMAIL_EVERY_S", 60),
    "options": {"queue": f"{CELERY_TASK_DEFAULT_QUEUE}.validate"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    # Trust X-Forwarded-For only from as many proxies as the deployment really has; otherwise a
    # client could send a fresh address with every request and never be throttled.
    "NUM_PROXIES": env.integer("ARENA_NUM_PROXIES", 0),
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.string("ARENA_THROTTLE_ANON", "600/min"),
        "user": env.string("ARENA_THROTTLE_USER", "1200/min"),
        "uploads": env.string("ARENA_THROTTLE_UPLOADS", "30/min"),
        # Per client address (enrollment.throttles): sign-ups sent, and wrong join codes tried.
        # A class signing up in a lecture behind one campus address needs the first to fit it.
        "signups": env.string("ARENA_THROTTLE_SIGNUPS", "200/hour"),
        "join_codes": env.string("ARENA_THROTTLE_JOIN_CODES", "30/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Model Arena API",
    "DESCRIPTION": "Competitions, uploads and leaderboards for small, fast ML models.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The documentation pages load their scripts from our own static files: a course server may
    # have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Throttle counts live in the cache: per process by default, shared across web processes when
# ARENA_CACHE_URL points at Redis (docker-compose does).
if env.string("ARENA_CACHE_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": env.string("ARENA_CACHE_URL")}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # Server errors with their tracebacks on stderr in production too (Django's default
        # sends them only to ADMINS by mail when DEBUG is off).
        "django": {"handlers": ["console"], "level": "ERROR"},
        "submissions": {"handlers": ["console"], "level": "INFO"},
        "arena": {"handlers": ["console"], "level": "INFO"},
    },
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
