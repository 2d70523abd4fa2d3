"""Bad input: a 400 (or 415) naming the field, and nothing written."""

import pytest

from memories.models import Memory, MemoryAccess
from tests.api_paths import ADD, QUERY

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body, field",
    [
        ({"content": ""}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "x" * 50_001}, "content"),
        ({}, "content"),
        ({"content": 42}, "content"),
        ({"content": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"content": "ok", "tags": ["x" * 51]}, "tags"),
        ({"content": "ok", "category": "c" * 101}, "category"),
        ({"content": "ok", "source": "s" * 101}, "source"),
        ({"content": "ok", "isCatalyst": "yes"}, "isCatalyst"),
        ({"content": "ok", "metadata": ["not", "an", "object"]}, "metadata"),
        ({"content": "ok", "is_catalyst": True}, "is_catalyst"),
    ],
)
def test_bad_add_is_rejected_and_writes_nothing(post_json, body, field):
    response = post_json(ADD, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"]
    assert field in error["message"]
    assert Memory.objects.count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"query": ""}, "query"),
        ({"query": "q" * 5001}, "query"),
        ({"query": "ok", "limit": 0}, "limit"),
        ({"query": "ok", "limit": 101}, "limit"),
        ({"query": "ok", "limit": True}, "limit"),
        ({"query": "ok", "limit": "20"}, "limit"),
        ({"query": "ok", "similarityThreshold": 1.5}, "similarityThreshold"),
        ({"query": "ok", "similarityThreshold": -0.1}, "similarityThreshold"),
        ({"query": "ok", "tiers": ["archive"]}, "tiers"),
        ({"query": "ok", "tiers": []}, "tiers"),
        ({"query": "ok", "conversationId": "c" * 201}, "conversationId"),
        ({"query": "ok", "conversationId": ""}, "conversationId"),
        ({"query": "ok", "mode": "fuzzy"}, "mode"),
        ({"query": "ok", "similarity_threshold": 0.5}, "similarity_threshold"),
    ],
)
def test_bad_query_is_rejected_and_writes_nothing(post_json, body, field):
    existing = post_json(ADD, {"content": "ok"}).json()["data"]["memory"]

    response = post_json(QUERY, body)

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]
    assert Memory.objects.get(id=existing["id"]).access_count == 0
    assert MemoryAccess.objects.count() == 0


def test_several_bad_fields_are_all_named(post_json):
    response = post_json(QUERY, {"query": "", "limit": 0, "bogus": 1})

    assert set(response.json()["error"]["details"]["fields"]) == {"query", "limit", "bogus"}


def test_malformed_json_is_a_validation_error(api):
    response = api.post(ADD, data='{"content": "unterminated', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert Memory.objects.count() == 0


def test_non_json_content_type_is_415(api):
    response = api.post(ADD, data="content=hello", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert Memory.objects.count() == 0


def test_json_array_body_is_rejected(post_json):
    response = post_json(ADD, ["content"])

    assert response.status_code == 400
    assert Memory.objects.count() == 0


@pytest.mark.parametrize(
    "query_string, field",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("includeActive=maybe", "includeActive"),
        ("maxChars=0", "maxChars"),
        ("conversationId=" + "c" * 201, "conversationId"),
        ("include_active=false", "include_active"),
    ],
)
def test_bad_bootstrap_parameters_are_rejected(api, query_string, field):
    response = api.get(f"/api/v1/memories/bootstrap?{query_string}")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


def test_wrong_method_is_405_in_the_envelope(api):
    response = api.get(ADD)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_unknown_route_is_404_in_the_envelope(api):
    response = api.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": "No such route."},
        "meta": response.json()["meta"],
    }


def test_every_response_carries_request_id_and_response_time(api):
    response = api.get("/api/v1/memories/bootstrap", HTTP_X_REQUEST_ID="client-chosen-id")

    assert response["X-Request-ID"] == "client-chosen-id"
    assert response.json()["meta"]["requestId"] == "client-chosen-id"
    assert response["X-Response-Time"].endswith("ms")


def test_a_hostile_request_id_is_replaced(api):
    response = api.get("/api/v1/memories/bootstrap", HTTP_X_REQUEST_ID="<script>alert(1)</script>")

    assert response["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(response["X-Request-ID"]) == 36
