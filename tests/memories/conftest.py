"""Fixtures of the memories tests, composed from the shared ones (``post_json`` → ``add``)."""

import pytest

from tests.api_paths import ADD


@pytest.fixture
def add(post_json, django_capture_on_commit_callbacks):
    """``add(content, **fields)`` adds through the API, runs the background work it enqueued
    (consolidation, catalysts: synchronous in tests) on commit, and returns the new id."""

    def add_one(content, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_json(ADD, {"content": content, **fields})
        assert response.status_code == 201, response.json()
        return response.json()["data"]["memory"]["id"]

    return add_one
