"""Test settings: everything of ``settings`` plus the overrides tests need, in one place."""

from anima_site.settings import *  # noqa: F401,F403
from anima_site.settings import CACHES

# Each test starts from an empty embedding cache (tests/conftest.py clears it).
if "locmem" in CACHES["embeddings"]["BACKEND"]:
    CACHES["embeddings"]["LOCATION"] = "anima-embeddings-test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests never serve collected static files.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
# Background tasks run in-process at enqueue time (one test starts a real worker).
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
# django-axes needs the request in authenticate(); the test client's login() passes none.
# Tests of the admin login limit turn it on (tests/meta/test_ops_hardening.py).
AXES_ENABLED = False
