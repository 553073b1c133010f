"""Garrison settings, driven by the environment (12-factor).

With no environment at all Garrison runs on an embedded default: SQLite and a
filesystem Celery broker, both under ``var/``. ``DATABASE_URL`` switches to
PostgreSQL and ``CELERY_BROKER_URL`` to Redis or RabbitMQ. With ``DEBUG`` off a
missing ``SECRET_KEY`` stops start-up.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GARRISON_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated environment variable."""
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    """Read an integer environment variable, naming it when it is not a number."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from exc


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random "
            "string (for example: python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=1 for local development."
        )
    # Development only: a per-checkout key kept under var/, never committed.
    _key_file = VAR_DIR / "dev-secret-key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text().strip()
    else:
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        SECRET_KEY = secrets.token_urlsafe(50)
        _key_file.write_text(SECRET_KEY)
        _key_file.chmod(0o600)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "garrison.core",
    "garrison.accounts",
    "garrison.audit",
    "threatmodel",
    "evaluations",
    "evaluations.ingestion",
    "evaluations.serving",
    "kpis",
    "incidents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "garrison.core.middleware.RequestIdMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a lock-out into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "garrison.urls"
WSGI_APPLICATION = "garrison.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "garrison.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
_default_sqlite = f"sqlite:///{VAR_DIR / 'garrison.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or _default_sqlite,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Several processes (web, worker, beat) share one file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # Tests may start a real worker process, which must see the same test database: a file,
    # one per test process so that concurrent test runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-garrison-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Hot queries (garrison.core.compiled) are prepared on PostgreSQL: off behind a pooler that cannot keep them.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)

# --- Cache (rate limits, lock-outs) -----------------------------------------------
_cache_url = os.environ.get("CACHE_URL", "")
if _cache_url.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ---------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "threatmodel:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Lock-out after repeated failed logins (django-axes): per user name and client address.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Request bodies: JSON APIs are small; uploads stream to disk and have their own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "garrison.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "garrison.core.api.pagination.Pagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "garrison.core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Garrison API",
    "DESCRIPTION": "Threat modeling and security governance for machine-learning systems.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TeamRoleEnum": "garrison.accounts.roles.Role",
        "TokenRoleEnum": "garrison.accounts.roles.TokenRole",
        "VersionStatusEnum": "threatmodel.models.VersionStatus",
        "ThreatStatusEnum": "threatmodel.models.ThreatStatus",
        "ControlStatusEnum": "threatmodel.models.ControlStatus",
        "AtlasKindEnum": "threatmodel.models.AtlasKind",
        "ImportFormatEnum": "threatmodel.interchange.FORMAT_CHOICES",
        "ModelFormatEnum": "evaluations.models.ModelFormat",
        "ScanStatusEnum": "evaluations.models.ScanStatus",
        "DatasetKindEnum": "evaluations.models.DatasetKind",
        "DatasetStatusEnum": "evaluations.models.DatasetStatus",
        "ReferenceDatasetEnum": "evaluations.models.ReferenceDataset",
        "RunKindEnum": "evaluations.models.RunKind",
        "RunStatusEnum": "evaluations.models.RunStatus",
        "RunArtifactKindEnum": "evaluations.models.RunArtifactKind",
        "IncidentStatusEnum": "incidents.models.IncidentStatus",
        "ReportKindEnum": "incidents.models.ReportKind",
        "GateFormatEnum": ["json", "junit", "sarif"],
        "IngestionBatchStatusEnum": "evaluations.ingestion.models.BatchStatus",
        "IngestionDecisionEnum": "evaluations.ingestion.models.Decision",
        "IngestionDecisionInputEnum": ["accept", "accept_without_flagged", "reject"],
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"
CELERY_BROKER_DIR = Path(os.environ.get("CELERY_BROKER_DIR", VAR_DIR / "broker"))
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60 * 60 + 300)
CELERY_BEAT_SCHEDULE_HEARTBEAT_SECONDS = env_int("CELERY_HEARTBEAT_SECONDS", 60)

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "garrison.core.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}

# --- Garrison ----------------------------------------------------------------------------------
GARRISON_API_TOKEN_PREFIX = "grs_"  # noqa: S105 - a visible prefix, not a secret

# Evaluations: uploads, workers and run supervision.
GARRISON_MAX_UPLOAD_BYTES = env_int("GARRISON_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
GARRISON_TORCH_THREADS = env_int("GARRISON_TORCH_THREADS", 0)  # 0: torch's default (all cores)
GARRISON_GPU_QUEUE = os.environ.get("GARRISON_GPU_QUEUE", "")  # e.g. "gpu"; runs with device "cuda" go there
GARRISON_RUN_HEARTBEAT_SECONDS = env_int("GARRISON_RUN_HEARTBEAT_SECONDS", 10)
GARRISON_RUN_STALE_SECONDS = env_int("GARRISON_RUN_STALE_SECONDS", 120)
GARRISON_RUN_MAX_ATTEMPTS = env_int("GARRISON_RUN_MAX_ATTEMPTS", 2)
GARRISON_PROGRESS_INTERVAL_SECONDS = float(os.environ.get("GARRISON_PROGRESS_INTERVAL_SECONDS", "1.0"))
# Largest training-data batch a pipeline may push (evaluations.ingestion); each dataset also caps its records.
GARRISON_INGESTION_MAX_BATCH_BYTES = env_int("GARRISON_INGESTION_MAX_BATCH_BYTES", 64 * 1024 * 1024)

# --- Serving guard (evaluations.serving) ---------------------------------------------
# The largest prediction body read at all; each deployment sets its own (smaller) limit.
GARRISON_SERVING_MAX_BODY_BYTES = env_int("GARRISON_SERVING_MAX_BODY_BYTES", 16 * 1024 * 1024)
# Where workers reach the web process, for extraction runs that target a deployment over HTTP.
GARRISON_SERVING_BASE_URL = os.environ.get("GARRISON_SERVING_BASE_URL", "http://127.0.0.1:8000")
# Torch threads of a web process once it serves a model (0: torch's default); batch-1 predictions are fastest
# on one thread per process, with the cores shared by several processes.
GARRISON_SERVING_TORCH_THREADS = env_int("GARRISON_SERVING_TORCH_THREADS", 1)
# Whether a web process takes its heap out of the garbage collector's full passes (gc.freeze) once a model is
# loaded: removes ~100 ms collection pauses under load (docs/serving.md).
GARRISON_SERVING_FREEZE_HEAP = env_bool("GARRISON_SERVING_FREEZE_HEAP", True)
