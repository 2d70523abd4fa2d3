"""Error answers of a live Anima raised as the typed exceptions, with code, message,
details, status and request id."""

import uuid

import pytest

from anima_client import (
    AnimaClient,
    AnimaError,
    Conflict,
    Forbidden,
    InvalidTier,
    NotFound,
    RateLimited,
    RetryPolicy,
    Unauthorized,
    ValidationError,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_no_key_is_unauthorized(anima_url):
    with AnimaClient(anima_url) as client, pytest.raises(Unauthorized) as raised:
        client.stats()

    error = raised.value
    assert (error.code, error.status) == ("UNAUTHORIZED", 401)
    assert "API key" in error.message
    assert error.request_id


def test_an_unknown_key_is_unauthorized(anima_url):
    with AnimaClient(anima_url, "anima_000000000000_not-a-secret") as client, pytest.raises(Unauthorized):
        client.stats()


def test_a_read_key_adding_is_forbidden(anima_url, api_key_for):
    with AnimaClient(anima_url, api_key_for("read")) as client:
        with pytest.raises(Forbidden) as raised:
            client.add("A read key cannot write this.")
        assert client.query("anything").count == 0  # a query is allowed to a read key

    assert (raised.value.code, raised.value.status) == ("FORBIDDEN", 403)


def test_an_unknown_id_is_not_found(anima):
    missing = uuid.uuid4()

    with pytest.raises(NotFound) as raised:
        anima.memories.get(missing)

    error = raised.value
    assert (error.code, error.status) == ("MEMORY_NOT_FOUND", 404)
    assert error.memory_id == str(missing)
    assert error.merged_into is None
    assert isinstance(error, AnimaError)


def test_update_tier_of_an_unknown_id_is_not_found(anima):
    with pytest.raises(NotFound):
        anima.update_tier(uuid.uuid4(), "stable")


def test_a_merged_memory_is_not_found_with_merged_into(anima):
    older = anima.add("The cat sat on the mat.").memory
    newer = anima.add("the cat sat on the mat!").memory  # consolidation folds it into the older

    with pytest.raises(NotFound) as raised:
        anima.memories.get(newer.id)

    assert raised.value.merged_into == str(older.id)


def test_validation_error_names_the_field(anima):
    with pytest.raises(ValidationError) as raised:
        anima.query("x", limit=500)

    error = raised.value
    assert (error.code, error.status) == ("VALIDATION_ERROR", 400)
    assert "limit" in error.fields
    assert "limit" in error.details["fields"]
    assert error.request_id


def test_an_unknown_tier_is_invalid_tier(anima):
    memory = anima.add("Tier check.").memory

    with pytest.raises(InvalidTier) as raised:
        anima.update_tier(memory.id, "forever")

    assert raised.value.code == "INVALID_TIER"
    assert isinstance(raised.value, ValidationError)


def test_patching_to_another_memorys_content_is_a_conflict(anima):
    first = anima.add("First text.").memory
    second = anima.add("Second text.").memory

    with pytest.raises(Conflict) as raised:
        anima.memories.patch(second.id, content="First text.")

    assert raised.value.status == 409
    assert raised.value.existing_id == str(first.id)



def test_over_the_rate_limit_is_rate_limited_with_retry_after(anima_url, write_key, settings):
    settings.ANIMA_RATE_LIMIT = "2/min"
    # A Retry-After longer than max_retry_after is not waited for: the error comes at once.
    with AnimaClient(anima_url, write_key, retry=RetryPolicy(max_retry_after=1)) as client:
        client.stats()
        client.stats()
        with pytest.raises(RateLimited) as raised:
            client.stats()

    error = raised.value
    assert (error.code, error.status) == ("RATE_LIMITED", 429)
    assert 1 < error.retry_after <= 60
