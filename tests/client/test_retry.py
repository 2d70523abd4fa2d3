"""Retries against a real HTTP server on 127.0.0.1 that answers from a script: 503 and
429 (honouring Retry-After) and connection failures are retried a bounded number of
times with growing waits; other errors never."""

import asyncio
import socket
import time

import pytest

from anima_client import (
    AnimaClient,
    AnimaConnectionError,
    AsyncAnimaClient,
    DatabaseUnavailable,
    EmbeddingUnavailable,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    ValidationError,
)
from tests.client.conftest import FAST_RETRY, Scripted, envelope_error

STATS = {"totalPhi": 0, "avgPhi": 0, "maxPhi": 0, "catalystCount": 0, "totalMemories": 7, "topCategory": None}
OK_STATS = Scripted(200, {"success": True, "data": STATS, "meta": {"requestId": "req-ok"}})


def unavailable(n: int) -> Scripted:
    return Scripted(503, envelope_error("EMBEDDING_UNAVAILABLE", "The embedding provider is unavailable.", f"req-503-{n}"))


@pytest.mark.django_db(transaction=True)
def test_two_503s_then_the_real_answer_takes_three_attempts(anima_url, write_key, scripted_server):
    server = scripted_server([unavailable(1), unavailable(2)], upstream=anima_url)

    with AnimaClient(server.url, write_key, retry=FAST_RETRY) as client:
        result = client.add("Stored on the third attempt.")

    assert server.attempts == [("POST", "/api/v1/memories/add")] * 3
    assert result.is_duplicate is False
    assert result.memory.content == "Stored on the third attempt."


def test_503_until_the_retries_run_out_raises_the_typed_error(scripted_server, recorded_sleeps):
    server = scripted_server([unavailable(n) for n in range(1, 10)])
    policy = RetryPolicy(max_retries=2, backoff=0.5, backoff_max=8, jitter=False)

    with AnimaClient(server.url, "key", retry=policy) as client, pytest.raises(EmbeddingUnavailable) as raised:
        client.stats()

    assert len(server.attempts) == 3
    assert recorded_sleeps == [0.5, 1.0]  # exponential backoff
    error = raised.value
    assert (error.code, error.status, error.request_id) == ("EMBEDDING_UNAVAILABLE", 503, "req-503-3")


def test_the_backoff_is_capped(scripted_server, recorded_sleeps):
    server = scripted_server([unavailable(n) for n in range(1, 10)])
    policy = RetryPolicy(max_retries=5, backoff=1, backoff_max=3, jitter=False)

    with AnimaClient(server.url, "key", retry=policy) as client, pytest.raises(EmbeddingUnavailable):
        client.stats()

    assert recorded_sleeps == [1, 2, 3, 3, 3]


def test_a_503_database_error_is_retried_and_typed(scripted_server, recorded_sleeps):
    down = Scripted(503, envelope_error("DATABASE_UNAVAILABLE", "The database is unavailable.", "req-db"))
    server = scripted_server([down, down])

    with AnimaClient(server.url, "key", max_retries=1) as client, pytest.raises(DatabaseUnavailable):
        client.stats()

    assert len(server.attempts) == 2


def test_429_waits_for_retry_after(scripted_server, recorded_sleeps):
    limited = Scripted(429, envelope_error("RATE_LIMITED", "Too many requests.", "req-429"), {"Retry-After": "2"})
    server = scripted_server([limited], final=OK_STATS)

    with AnimaClient(server.url, "key", retry=FAST_RETRY) as client:
        stats = client.stats()

    assert stats.total_memories == 7
    assert len(server.attempts) == 2
    assert recorded_sleeps == [2.0]


def test_429_really_sleeps_the_retry_after(scripted_server):
    limited = Scripted(429, envelope_error("RATE_LIMITED", "Too many requests.", "req-429"), {"Retry-After": "1"})
    server = scripted_server([limited], final=OK_STATS)

    started = time.monotonic()
    with AnimaClient(server.url, "key", retry=FAST_RETRY) as client:
        client.stats()

    assert time.monotonic() - started >= 1.0


def test_429_with_a_retry_after_beyond_the_limit_is_raised_at_once(scripted_server, recorded_sleeps):
    limited = Scripted(429, envelope_error("RATE_LIMITED", "Too many requests.", "req-429"), {"Retry-After": "120"})
    server = scripted_server([limited], final=OK_STATS)

    with AnimaClient(server.url, "key", retry=RetryPolicy(max_retry_after=60)) as client:
        with pytest.raises(RateLimited) as raised:
            client.stats()

    assert len(server.attempts) == 1
    assert recorded_sleeps == []
    assert raised.value.retry_after == 120
    assert raised.value.status == 429


def test_a_refused_connection_is_retried_then_raised(recorded_sleeps):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with AnimaClient(f"http://127.0.0.1:{port}", "key", retry=FAST_RETRY) as client:
        with pytest.raises(AnimaConnectionError) as raised:
            client.stats()

    assert len(recorded_sleeps) == 3
    assert "after 4 attempt(s)" in raised.value.message


def test_other_errors_are_not_retried(scripted_server, recorded_sleeps):
    server = scripted_server([Scripted(400, envelope_error("VALIDATION_ERROR", "Invalid limit.", "req-400"))])

    with AnimaClient(server.url, "key", retry=FAST_RETRY) as client, pytest.raises(ValidationError):
        client.stats()

    assert len(server.attempts) == 1
    assert recorded_sleeps == []


def test_max_retries_zero_sends_once(scripted_server):
    server = scripted_server([unavailable(1)], final=OK_STATS)

    with AnimaClient(server.url, "key", max_retries=0) as client, pytest.raises(EmbeddingUnavailable):
        client.stats()

    assert len(server.attempts) == 1


def test_a_non_envelope_503_from_a_proxy_is_retried_and_typed(scripted_server, recorded_sleeps):
    server = scripted_server([Scripted(503, {"html": "Service Unavailable"})] * 4)

    with AnimaClient(server.url, "key", max_retries=1) as client, pytest.raises(ServiceUnavailable) as raised:
        client.stats()

    assert raised.value.code == "SERVICE_UNAVAILABLE"
    assert len(server.attempts) == 2


def test_the_async_client_retries_the_same_way(scripted_server, recorded_sleeps):
    server = scripted_server([unavailable(1), unavailable(2)], final=OK_STATS)

    async def stats():
        async with AsyncAnimaClient(server.url, "key", retry=FAST_RETRY) as client:
            return await client.stats()

    assert asyncio.run(stats()).total_memories == 7
    assert len(server.attempts) == 3
    assert recorded_sleeps == [0.01, 0.02]


def test_health_answers_a_failing_check_without_retrying(scripted_server):
    failing = {"status": "fail", "checks": {"database": {"status": "fail", "error": "OperationalError"}}, "failing": ["database"]}
    server = scripted_server([Scripted(503, failing)])

    with AnimaClient(server.url, retry=FAST_RETRY) as client:
        health = client.health()

    assert health.ok is False
    assert health.failing == ["database"]
    assert len(server.attempts) == 1
