"""Operational hardening: who may read ``/metrics``, the admin login limit (django-axes),
namespace names checked where keys are made and in ``ANIMA_DEFAULT_NAMESPACE``, and
chunked request bodies under a real gunicorn (``anima_site.wsgi``) — against the real
database and real HTTP on loopback."""

import subprocess
import sys
import threading
from datetime import timedelta
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from keys.models import ApiKey
from keys.services import api_key_create
from tests.api_paths import ADD, BOOTSTRAP
from tests.processes import environment, free_port, start, stop_group, wait_for

pytestmark = pytest.mark.django_db

PROMETHEUS = "/metrics"
ADMIN_LOGIN = "/admin/login/"
ADMIN_INDEX = "/admin/"
STAFF_PASSWORD = "the-right-password-1"
#: The body limit of the gunicorn started below (ANIMA_MAX_BODY_BYTES' minimum).
SERVED_BODY_LIMIT = 1024


# --- /metrics: loopback only unless a token or ANIMA_METRICS_PUBLIC ------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_metrics_answers_a_loopback_client_without_a_token(anonymous_api, address):
    response = anonymous_api.get(PROMETHEUS, REMOTE_ADDR=address)

    assert response.status_code == 200
    assert "anima_memories" in response.content.decode()


@pytest.mark.parametrize("address", ["10.0.0.7", "192.168.1.20", "2001:db8::1", "not-an-address"])
def test_metrics_refuses_any_other_client_without_a_token(anonymous_api, address):
    response = anonymous_api.get(PROMETHEUS, REMOTE_ADDR=address)

    assert response.status_code == 403
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "FORBIDDEN"
    assert "ANIMA_METRICS_TOKEN" in body["error"]["message"]
    assert "anima_memories" not in response.content.decode()


def test_metrics_refuses_a_request_a_local_proxy_forwarded(anonymous_api):
    response = anonymous_api.get(PROMETHEUS, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert response.status_code == 403


def test_metrics_public_answers_any_client_without_a_token(anonymous_api, settings):
    settings.ANIMA_METRICS_PUBLIC = True

    response = anonymous_api.get(PROMETHEUS, REMOTE_ADDR="10.0.0.7")

    assert response.status_code == 200


def test_metrics_token_is_required_from_loopback_too(anonymous_api, settings):
    settings.ANIMA_METRICS_TOKEN = "s3cret"
    settings.ANIMA_METRICS_PUBLIC = True  # a token wins over the public flag

    response = anonymous_api.get(PROMETHEUS, REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_metrics_token_opens_it_to_a_remote_client(anonymous_api, settings):
    settings.ANIMA_METRICS_TOKEN = "s3cret"

    response = anonymous_api.get(PROMETHEUS, REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer s3cret")

    assert response.status_code == 200


# --- Admin login attempts (django-axes) ----------------------------------------------------


@pytest.fixture
def axes_on(settings):
    """django-axes as served (the test settings turn it off for the test client's login())."""
    settings.AXES_ENABLED = True
    return settings


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="staff", password=STAFF_PASSWORD, is_staff=True)


def log_in(client, password: str, address: str = "198.51.100.4"):
    return client.post(ADMIN_LOGIN, {"username": "staff", "password": password, "next": ADMIN_INDEX}, REMOTE_ADDR=address)


def test_admin_login_limit_defaults_to_5_attempts_and_15_minutes(settings):
    assert (settings.ANIMA_ADMIN_LOGIN_ATTEMPTS, settings.ANIMA_ADMIN_LOCKOUT_MINUTES) == (5, 15)
    assert settings.AXES_FAILURE_LIMIT == settings.ANIMA_ADMIN_LOGIN_ATTEMPTS
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=settings.ANIMA_ADMIN_LOCKOUT_MINUTES)


def test_admin_login_after_the_limit_is_refused_even_with_the_right_password(axes_on, staff, client):
    for _ in range(axes_on.ANIMA_ADMIN_LOGIN_ATTEMPTS - 1):
        assert log_in(client, "wrong").status_code == 200  # the form again, with its error
    assert log_in(client, "wrong").status_code == 429  # the last allowed failure locks

    response = log_in(client, STAFF_PASSWORD)

    assert response.status_code == 429
    assert client.get(ADMIN_INDEX).status_code == 302  # not logged in: sent to the login page


def test_admin_login_below_the_limit_still_succeeds(axes_on, staff, client):
    for _ in range(axes_on.ANIMA_ADMIN_LOGIN_ATTEMPTS - 1):
        log_in(client, "wrong")

    assert log_in(client, STAFF_PASSWORD).status_code == 302
    assert client.get(ADMIN_INDEX).status_code == 200


def test_admin_lockout_is_per_username_and_address(axes_on, staff, client):
    for _ in range(axes_on.ANIMA_ADMIN_LOGIN_ATTEMPTS):
        log_in(client, "wrong", address="198.51.100.4")

    assert log_in(client, STAFF_PASSWORD, address="198.51.100.5").status_code == 302


def test_api_key_failures_never_lock_anything(axes_on, staff, client, anonymous_api, api_key_for):
    for _ in range(3 * axes_on.ANIMA_ADMIN_LOGIN_ATTEMPTS):
        refused = anonymous_api.get(BOOTSTRAP, HTTP_AUTHORIZATION="Bearer anima_nope_wrong", REMOTE_ADDR="198.51.100.4")
        assert refused.status_code == 401

    anonymous_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('read')}")
    assert anonymous_api.get(BOOTSTRAP, REMOTE_ADDR="198.51.100.4").status_code == 200
    assert AccessAttempt.objects.count() == 0
    assert log_in(client, STAFF_PASSWORD).status_code == 302


# --- Namespace names where keys are made ---------------------------------------------------

BAD_NAMESPACES = ["", "../", "a/b", "tenant b", "x" * 65, "abc\n", "ünï"]


@pytest.mark.parametrize("namespace", BAD_NAMESPACES)
def test_api_key_create_refuses_a_namespace_the_api_would_refuse(namespace):
    with pytest.raises(ValidationError) as error:
        api_key_create(name="bad", namespace=namespace, scope="write")

    assert repr(namespace) in error.value.messages[0]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("namespace", ["default", "tenant-b_2", "x" * 64])
def test_api_key_create_accepts_a_valid_namespace(namespace):
    key, _ = api_key_create(name="good", namespace=namespace, scope="write")

    assert ApiKey.objects.get(pk=key.pk).namespace == namespace


@pytest.mark.parametrize("namespace", ["", "../", "a\n"])
def test_api_key_command_fails_naming_the_namespace(namespace):
    with pytest.raises(CommandError) as error:
        call_command("api_key", "create", "--name", "bad", "--namespace", namespace)

    assert repr(namespace) in str(error.value)
    assert not ApiKey.objects.exists()


def default_namespace_at_start(tmp_path, namespace: str) -> subprocess.CompletedProcess:
    """A fresh interpreter loading the settings with ``ANIMA_DEFAULT_NAMESPACE=namespace``."""
    code = "from django.conf import settings; print(repr(settings.ANIMA_DEFAULT_NAMESPACE))"
    env = environment(ANIMA_DATA_DIR=str(tmp_path), ANIMA_DEFAULT_NAMESPACE=namespace)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("namespace", ["team\n", "a/b", "x" * 65])
def test_an_invalid_default_namespace_stops_the_settings_from_loading(tmp_path, namespace):
    loaded = default_namespace_at_start(tmp_path, namespace)

    assert loaded.returncode != 0
    assert f"ImproperlyConfigured: ANIMA_DEFAULT_NAMESPACE: Invalid namespace {namespace!r}" in loaded.stderr


def test_a_valid_default_namespace_is_the_setting(tmp_path):
    loaded = default_namespace_at_start(tmp_path, "tenant-b_2")

    assert (loaded.returncode, loaded.stdout.strip()) == (0, "'tenant-b_2'"), loaded.stderr


# --- Chunked request bodies (anima_site.wsgi) ----------------------------------------------


def chunks(body: bytes, size: int = 256):
    """The body as an iterator: httpx sends it with Transfer-Encoding: chunked, no length."""
    for start_at in range(0, len(body), size):
        yield body[start_at : start_at + size]


@pytest.fixture
def gunicorn_server(tmp_path, transactional_db):
    """gunicorn (gunicorn.conf.py, one worker) on a free loopback port against the test
    database, with a body limit of SERVED_BODY_LIMIT; yields (base URL, an API key)."""
    _, key = api_key_create(name="chunked", namespace="default", scope="write")
    port = free_port()
    env = environment(
        ANIMA_DATA_DIR=str(tmp_path),
        ANIMA_PORT=str(port),
        ANIMA_WEB_WORKERS="1",
        ANIMA_RATE_LIMIT="off",
        ANIMA_MAX_BODY_BYTES=str(SERVED_BODY_LIMIT),
    )
    log = tmp_path / "gunicorn.log"
    process = start([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"], env, log)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, f"gunicorn exited:\n{log.read_text()[-3000:]}"
        try:
            return httpx.get(f"{base}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=120, what="gunicorn")
        yield base, key
    finally:
        stop_group(process)


def test_a_chunked_add_is_read_whole_under_gunicorn(gunicorn_server):
    base, key = gunicorn_server
    body = b'{"content": "' + b"chunked words " * 20 + b'"}'

    response = httpx.post(
        base + ADD,
        content=chunks(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 201, response.text
    assert response.json()["data"]["memory"]["content"].startswith("chunked words")


def test_a_chunked_body_over_the_limit_is_413_in_the_envelope(gunicorn_server):
    base, key = gunicorn_server
    body = b'{"content": "' + b"x" * (4 * SERVED_BODY_LIMIT) + b'"}'

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        response = client.post(ADD, content=chunks(body), headers={"Content-Type": "application/json"})
        after = client.get(BOOTSTRAP)  # the same connection goes on

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert str(SERVED_BODY_LIMIT) in response.json()["error"]["message"]
    assert after.status_code == 200


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_a_chunked_body_is_411_where_the_server_cannot_dechunk(db):
    """wsgiref passes the raw chunked stream and no ``wsgi.input_terminated``."""
    from anima_site.wsgi import application

    server = make_server("127.0.0.1", free_port(), application, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    try:
        response = httpx.post(
            f"http://127.0.0.1:{server.server_port}{ADD}",
            content=chunks(b'{"content": "short"}'),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    finally:
        thread.join(timeout=30)
        server.server_close()

    assert response.status_code == 411
    assert response.json()["error"]["code"] == "LENGTH_REQUIRED"
