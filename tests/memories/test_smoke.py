import pytest

pytestmark = pytest.mark.django_db


def test_add_then_query_finds_the_memory(post_json):
    created = post_json("/api/v1/memories/add", {"content": "Dana is allergic to peanuts."})
    assert created.status_code == 201
    found = post_json("/api/v1/memories/query", {"query": "What is Dana allergic to?"})
    assert found.status_code == 200
    assert [m["content"] for m in found.json()["data"]["memories"]] == ["Dana is allergic to peanuts."]
