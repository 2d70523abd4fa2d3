"""API keys, scopes, namespace isolation, body size and throttling."""

import numpy as np
import pytest
from django.core.cache import caches

from keys.services import api_key_revoke
from memories.models import Memory, MemoryAssociation
from tests.api_paths import ADD, BOOTSTRAP, QUERY
from tests.factories import make_memories

pytestmark = pytest.mark.django_db


def client_with(key, header="Authorization"):
    from rest_framework.test import APIClient

    client = APIClient()
    if header == "Authorization":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    else:
        client.credentials(HTTP_X_API_KEY=key)
    return client


def test_without_a_key_every_api_route_is_401(anonymous_api):
    for response in (
        anonymous_api.post(ADD, {"content": "x"}, format="json"),
        anonymous_api.post(QUERY, {"query": "x"}, format="json"),
        anonymous_api.get(BOOTSTRAP),
        anonymous_api.get("/api/v1/meta/cache-stats"),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert Memory.objects.count() == 0


def test_a_revoked_key_is_401(api_key_for):
    key = api_key_for("write")
    api_key_revoke(prefix=key.split("_")[1])

    response = client_with(key).get(BOOTSTRAP)

    assert response.status_code == 401


@pytest.mark.parametrize("raw", ["anima_nope_nope", "not-a-key", "anima__", "Basic abc"])
def test_a_malformed_or_unknown_key_is_401(anonymous_api, raw):
    response = anonymous_api.get(BOOTSTRAP, HTTP_AUTHORIZATION=raw if raw.startswith("Basic") else f"Bearer {raw}")

    assert response.status_code == 401
    assert raw not in response.content.decode()


@pytest.mark.parametrize(
    "raw",
    ["anima_ab\x00cd_x", "anima_abcd_x\x00", "anima_ab\u00e9cd_x", "anima_ab\x1bcd_x", "anima_" + "a" * 5000 + "_x"],
    ids=["nul-in-prefix", "nul-in-secret", "non-ascii", "control-character", "absurdly-long"],
)
@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_a_key_with_unprintable_characters_is_401_before_any_query(
    anonymous_api, django_assert_num_queries, header, raw
):
    value = f"Bearer {raw}" if header == "HTTP_AUTHORIZATION" else raw

    with django_assert_num_queries(0):
        response = anonymous_api.get(BOOTSTRAP, **{header: value})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_the_key_may_come_in_x_api_key(api_key_for):
    assert client_with(api_key_for("read"), header="X-API-Key").get(BOOTSTRAP).status_code == 200


def test_a_read_key_can_query_and_bootstrap_but_not_add(api_key_for):
    client = client_with(api_key_for("read"))

    assert client.get(BOOTSTRAP).status_code == 200
    assert client.post(QUERY, {"query": "anything"}, format="json").status_code == 200
    response = client.post(ADD, {"content": "not allowed"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert Memory.objects.count() == 0


def test_without_required_keys_requests_act_in_the_default_namespace(anonymous_api, settings):
    settings.ANIMA_REQUIRE_API_KEY = False

    response = anonymous_api.post(ADD, {"content": "open mode"}, format="json")

    assert response.status_code == 201
    assert response.json()["data"]["memory"]["namespace"] == "default"


@pytest.fixture
def two_tenants(api_key_for, fake_embedder):
    a = client_with(api_key_for("write", namespace="tenant-a"))
    b = client_with(api_key_for("write", namespace="tenant-b"))
    vector = np.zeros(384)
    vector[0] = 1
    fake_embedder.vectors["secret of b"] = vector
    b_memories = make_memories(
        [{"content": "secret of b", "vector": vector}, {"content": "more of b", "vector": vector}], namespace="tenant-b"
    )
    first, second = sorted(m.pk for m in b_memories)
    MemoryAssociation.objects.create(namespace="tenant-b", memory_a_id=first, memory_b_id=second, co_occurrence_count=3)
    return a, b, b_memories


def test_a_tenant_never_sees_another_tenants_memories(two_tenants):
    a, _, b_memories = two_tenants
    target = str(b_memories[0].pk)

    assert a.post(QUERY, {"query": "secret of b", "similarityThreshold": 0}, format="json").json()["data"]["count"] == 0
    assert a.get(BOOTSTRAP).json()["data"]["distribution"]["total"] == 0
    assert a.post("/api/v1/memories/update-tier", {"memoryId": target, "tier": "stable"}, format="json").status_code == 404
    assert a.get(f"/api/v1/associations/discover?memoryId={target}").status_code == 404
    assert a.get(f"/api/v1/associations/network-stats?memoryId={target}").status_code == 404
    assert a.get("/api/v1/associations/hubs?minConnections=1").json()["data"]["count"] == 0
    assert a.get(f"/api/v1/memories/{target}/").status_code == 404
    assert a.patch(f"/api/v1/memories/{target}/", {"category": "stolen"}, format="json").status_code == 404
    assert a.delete(f"/api/v1/memories/{target}/").status_code == 404
    assert Memory.objects.get(pk=target).category is None
    assert Memory.objects.get(pk=target).deleted_at is None


def test_the_same_content_in_two_namespaces_makes_two_memories(two_tenants):
    a, b, _ = two_tenants

    assert a.post(ADD, {"content": "shared words"}, format="json").status_code == 201
    assert b.post(ADD, {"content": "shared words"}, format="json").status_code == 201
    assert sorted(Memory.objects.filter(content="shared words").values_list("namespace", flat=True)) == [
        "tenant-a",
        "tenant-b",
    ]


def test_an_admin_key_may_act_in_another_namespace(two_tenants, api):
    response = api.get(BOOTSTRAP, HTTP_X_ANIMA_NAMESPACE="tenant-b")

    assert response.json()["data"]["distribution"]["total"] == 2


def test_a_write_key_may_not_choose_its_namespace(two_tenants):
    a, _, _ = two_tenants

    response = a.get(BOOTSTRAP, HTTP_X_ANIMA_NAMESPACE="tenant-b")

    assert response.status_code == 403


@pytest.mark.parametrize("namespace", ["tenant-b\n", "", "a/b", "x" * 65, "t\u00fcr"])
def test_an_invalid_namespace_header_is_400_naming_it(two_tenants, api, namespace):
    response = api.get(BOOTSTRAP, HTTP_X_ANIMA_NAMESPACE=namespace)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "1-64 letters, digits" in response.content.decode()


def test_a_body_over_the_limit_is_413_and_writes_nothing(api, settings):
    settings.ANIMA_MAX_BODY_BYTES = 2048

    response = api.post(ADD, {"content": "x" * 5000}, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert Memory.objects.count() == 0


def test_requests_over_the_rate_are_429_with_retry_after(api, settings):
    caches["default"].clear()
    settings.ANIMA_RATE_LIMIT = "3/min"

    statuses = [api.get(BOOTSTRAP).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = api.get(BOOTSTRAP)
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert 0 < int(response["Retry-After"]) <= 60
    caches["default"].clear()


def test_an_unexpected_error_is_a_500_without_trace_or_secret(api, monkeypatch):
    from memories.views import memory_recall

    def explode(**kwargs):
        raise RuntimeError("password=hunter2 SELECT * FROM secrets")

    monkeypatch.setattr(memory_recall, "memories_bootstrap", explode)  # fault injection

    response = api.get(BOOTSTRAP)

    assert response.status_code == 500
    body = response.content.decode()
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "hunter2" not in body and "SELECT" not in body and "Traceback" not in body
