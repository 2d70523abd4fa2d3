"""The embedding cache statistics, the system metrics of ``/api/v1/meta/metrics`` and the
Prometheus exposition of ``/metrics`` (SPEC §3 "Meta" and "Outside /api/v1").

The embedding cache (and its hit/miss counters) is emptied before each test by the
autouse fixture in tests/conftest.py. Prometheus counters are process-wide, so tests
compare a scrape taken before the traffic with one taken after it."""

import threading
import time
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure, Task
from prometheus_client.parser import text_string_to_metric_families

from memories.models import Memory, Tier
from memories.services.access import memories_record_access
from tests.api_paths import QUERY
from tests.factories import make_memories

pytestmark = pytest.mark.django_db

CACHE_STATS = "/api/v1/meta/cache-stats"
SYSTEM_METRICS = "/api/v1/meta/metrics"
PROMETHEUS = "/metrics"
#: Lock-waiting connections that make the database "under pressure" (more than 5 wait).
PRESSURE_WAITERS = 6
ADVISORY_KEY = 774_201


def ask(post_json, text: str, times: int = 1) -> None:
    for _ in range(times):
        assert post_json(QUERY, {"query": text}).status_code == 200


def cache_stats(api) -> dict:
    response = api.get(CACHE_STATS)
    assert response.status_code == 200
    return response.json()["data"]


def system_metrics(api) -> dict:
    response = api.get(SYSTEM_METRICS)
    assert response.status_code == 200
    return response.json()["data"]


def scrape(api, **headers) -> dict:
    """``/metrics`` parsed: {(sample name, frozenset of labels): value}."""
    response = api.get(PROMETHEUS, **headers)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    """A sample's value; 0 when the labelled child does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def live_counts() -> dict:
    return {tier: Memory.objects.filter(namespace="default", tier=tier, deleted_at__isnull=True).count() for tier in Tier.values}


@pytest.fixture
def tiered_memories():
    """3 active, 2 thread, 1 stable live memories, and one soft-deleted active one."""
    specs = (
        [{"content": f"active {i}", "tier": Tier.ACTIVE} for i in range(3)]
        + [{"content": f"thread {i}", "tier": Tier.THREAD} for i in range(2)]
        + [{"content": "stable 0", "tier": Tier.STABLE}]
        + [{"content": "deleted active", "tier": Tier.ACTIVE, "deleted_at": timezone.now()}]
    )
    return make_memories(specs, with_embeddings=False)


@pytest.fixture
def lock_waiters():
    """``lock_waiters(n)``: n extra connections to the test database, each waiting on an
    advisory lock this test's connection holds; all released at the end."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
    threads = []

    def wait_for_lock():
        with psycopg.connect(autocommit=True, **params) as other:
            other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
            other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])

    def start(count: int):
        for _ in range(count):
            thread = threading.Thread(target=wait_for_lock, daemon=True)
            thread.start()
            threads.append(thread)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with connection.cursor() as cursor:
                # pg_stat_activity is a snapshot per transaction, and a test is one transaction.
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
                waiting = cursor.fetchone()[0]
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                if waiting >= count:
                    return
            time.sleep(0.02)
        raise AssertionError(f"{count} connections did not start waiting")

    yield start
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
    for thread in threads:
        thread.join(timeout=10)


# --- GET /api/v1/meta/cache-stats -----------------------------------------------------------


def test_cache_stats_report_hits_misses_rate_size_and_max_size(api, post_json, settings):
    ask(post_json, "where does the user live?")
    ask(post_json, "what is the user's favourite colour?", times=2)

    cache = cache_stats(api)["cache"]

    assert cache["hits"] == 1
    assert cache["misses"] == 2
    assert isinstance(cache["hitRate"], float)
    assert cache["hitRate"] == pytest.approx(1 / 3, abs=1e-4)
    assert_cache_size(cache["size"], 2)
    assert cache["maxSize"] == settings.ANIMA_EMBEDDING_CACHE_SIZE


def test_cache_stats_start_empty_for_each_test(api):
    cache = cache_stats(api)["cache"]

    assert (cache["hits"], cache["misses"], cache["hitRate"]) == (0, 0, 0.0)


def test_cache_hit_rate_rises_with_repeated_identical_queries(api, post_json):
    rates = []
    for _ in range(4):
        ask(post_json, "what did we decide about the deploy?")
        rates.append(cache_stats(api)["cache"]["hitRate"])

    assert rates == pytest.approx([0.0, 0.5, 2 / 3, 0.75], abs=1e-4)


def test_cache_recommendation_says_enlarge_below_half(api, post_json):
    ask(post_json, "first question")
    ask(post_json, "second question")
    ask(post_json, "first question")  # 1 hit of 3

    data = cache_stats(api)

    assert data["cache"]["hitRate"] < 0.5
    assert "enlarge" in data["recommendation"]
    assert "ANIMA_EMBEDDING_CACHE_SIZE" in data["recommendation"]


def test_cache_recommendation_does_not_say_enlarge_at_half_or_more(api, post_json):
    ask(post_json, "a question asked twice", times=2)  # 1 hit of 2

    data = cache_stats(api)

    assert data["cache"]["hitRate"] == 0.5
    assert "enlarge" not in data["recommendation"]


def test_cache_stats_reject_unknown_query_parameters(api):
    response = api.get(CACHE_STATS, {"verbose": "1"})

    assert response.status_code == 400
    assert "verbose" in response.json()["error"]["details"]["fields"]


# --- GET /api/v1/meta/metrics ---------------------------------------------------------------


def test_metrics_cache_status_is_warming_up_at_a_hit_rate_of_0_8(api, post_json):
    ask(post_json, "the same words again", times=5)  # 4 hits of 5

    cache = system_metrics(api)["cache"]

    assert cache["hitRate"] == pytest.approx(0.8)
    assert cache["status"] == "warming_up"


def test_metrics_cache_status_is_healthy_above_0_8(api, post_json):
    ask(post_json, "the same words again", times=6)  # 5 hits of 6

    cache = system_metrics(api)["cache"]

    assert cache["hitRate"] > 0.8
    assert cache["status"] == "healthy"


def test_metrics_cache_carries_the_cache_stats_fields(api, post_json):
    ask(post_json, "one query")

    cache = system_metrics(api)["cache"]

    assert {"hits", "misses", "hitRate", "size", "maxSize", "status"} <= set(cache)
    assert (cache["hits"], cache["misses"]) == (0, 1)


def test_metrics_database_reports_connections_and_status(api):
    database = system_metrics(api)["database"]

    assert database["connectionsInUse"] >= 1  # this request's own connection
    assert isinstance(database["idle"], int) and database["idle"] >= 0
    assert database["waiting"] == 0
    assert database["status"] == "ok"


def test_metrics_database_is_under_pressure_when_more_than_5_connections_wait(api, lock_waiters):
    lock_waiters(PRESSURE_WAITERS)

    database = system_metrics(api)["database"]

    assert database["waiting"] == PRESSURE_WAITERS
    assert database["connectionsInUse"] >= PRESSURE_WAITERS + 1
    assert database["status"] == "under_pressure"


def test_metrics_database_is_ok_with_5_waiting(api, lock_waiters):
    lock_waiters(PRESSURE_WAITERS - 1)

    database = system_metrics(api)["database"]

    assert database["waiting"] == PRESSURE_WAITERS - 1
    assert database["status"] == "ok"


def test_metrics_queue_counts_queued_and_failed_tasks(api):
    before = system_metrics(api)["queue"]
    get_broker().enqueue("a queued package")
    Task.objects.create(
        id=uuid.uuid4().hex,
        name="failed-for-the-test",
        func="reflections.tasks.delete_expired_handshakes",
        started=timezone.now(),
        stopped=timezone.now(),
        success=False,
    )

    queue = system_metrics(api)["queue"]

    assert queue == {"queued": before["queued"] + 1, "failed": before["failed"] + 1}
    assert queue["failed"] == Failure.objects.count()


def test_metrics_count_live_memories_per_tier(api, tiered_memories):
    memories = system_metrics(api)["memories"]

    assert memories == {"active": 3, "thread": 2, "stable": 1, "network": 0, "total": 6}


def test_metrics_timestamp_is_now_in_utc(api):
    stamp = system_metrics(api)["timestamp"]

    assert stamp.endswith("Z")
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(moment - timezone.now()) < timedelta(seconds=5)


# --- GET /metrics (Prometheus) --------------------------------------------------------------


def test_prometheus_text_parses_and_names_anima_families(api):
    response = api.get(PROMETHEUS)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"anima_memories", "anima_task_queue_depth", "anima_task_failures"} <= families


def test_prometheus_counts_requests_by_view_and_method(api):
    before = scrape(api)
    api.get(CACHE_STATS)
    api.get(CACHE_STATS)

    after = scrape(api)

    name = "django_http_requests_total_by_view_transport_method_total"
    labels = {"view": "meta-cache-stats", "transport": "http", "method": "GET"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2


def test_prometheus_counts_responses_by_status(api):
    before = scrape(api)
    api.get(CACHE_STATS, {"unknown": "x"})  # 400

    after = scrape(api)

    name = "django_http_responses_total_by_status_view_method_total"
    labels = {"status": "400", "view": "meta-cache-stats", "method": "GET"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_prometheus_cache_lookups_match_the_traffic(api, post_json):
    before = scrape(api)
    ask(post_json, "first distinct text", times=3)  # 1 miss, 2 hits
    ask(post_json, "second distinct text")  # 1 miss

    after = scrape(api)

    name = "anima_embedding_cache_lookups_total"
    assert value(after, name, result="hit") - value(before, name, result="hit") == 2
    assert value(after, name, result="miss") - value(before, name, result="miss") == 2


def test_prometheus_embedding_histogram_times_each_local_model_batch(api, post_json):
    before = scrape(api)
    ask(post_json, "timed once", times=2)  # the second is a cache hit: no model call
    ask(post_json, "timed twice")

    after = scrape(api)

    count = "anima_embedding_seconds_count"
    assert value(after, count, provider="local") - value(before, count, provider="local") == 2
    assert value(after, "anima_embedding_seconds_sum", provider="local") > value(before, "anima_embedding_seconds_sum", provider="local")
    assert value(after, "anima_embedding_seconds_bucket", provider="local", le="+Inf") == value(after, count, provider="local")


def test_prometheus_memories_gauge_equals_live_counts(api, tiered_memories):
    samples = scrape(api)

    expected = live_counts()
    assert expected == {"active": 3, "thread": 2, "stable": 1, "network": 0}
    for tier in ("active", "thread", "stable"):
        assert value(samples, "anima_memories", namespace="default", tier=tier) == expected[tier]


def test_prometheus_memories_gauge_follows_a_tier_change(api, tiered_memories):
    Memory.objects.filter(pk=tiered_memories[0].pk).update(tier=Tier.NETWORK)

    samples = scrape(api)

    assert value(samples, "anima_memories", namespace="default", tier="active") == 2
    assert value(samples, "anima_memories", namespace="default", tier="network") == 1


def test_prometheus_task_queue_depth_is_the_broker_queue(api):
    before = value(scrape(api), "anima_task_queue_depth")
    get_broker().enqueue("one package")
    get_broker().enqueue("another package")

    after = value(scrape(api), "anima_task_queue_depth")

    assert after - before == 2
    assert after == get_broker().queue_size()


def test_prometheus_counts_an_access_promotion(api):
    (memory,) = make_memories([{"content": "accessed five times", "tier": Tier.ACTIVE}], with_embeddings=False)
    labels = {"from_tier": "active", "to_tier": "thread", "reason": "access_threshold"}
    before = value(scrape(api), "anima_promotions_total", **labels)

    for _ in range(5):
        memories_record_access(namespace="default", memory_ids=[memory.pk])

    assert Memory.objects.get(pk=memory.pk).tier == Tier.THREAD
    assert value(scrape(api), "anima_promotions_total", **labels) - before == 1


def test_prometheus_needs_the_bearer_token_when_one_is_set(anonymous_api, settings):
    settings.ANIMA_METRICS_TOKEN = "s3cret"

    response = anonymous_api.get(PROMETHEUS)

    assert response.status_code == 401
    assert "anima_" not in response.content.decode()


def test_prometheus_answers_with_the_right_bearer_token(anonymous_api, settings):
    settings.ANIMA_METRICS_TOKEN = "s3cret"

    response = anonymous_api.get(PROMETHEUS, HTTP_AUTHORIZATION="Bearer s3cret")

    assert response.status_code == 200
    assert "anima_memories" in response.content.decode()


@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer s3cret2", "s3cret", "Basic s3cret"])
def test_prometheus_rejects_a_wrong_token(anonymous_api, settings, header):
    settings.ANIMA_METRICS_TOKEN = "s3cret"

    response = anonymous_api.get(PROMETHEUS, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401



def test_cache_size_counts_embeddings_not_the_counters(api, post_json):
    post_json("/api/v1/memories/query", {"query": "only one text"})

    assert_cache_size(api.get("/api/v1/meta/cache-stats").json()["data"]["cache"]["size"], 1)


def assert_cache_size(reported, embeddings_cached):
    """Exact for the local-memory cache; with Redis the size is DBSIZE, an upper bound."""
    from django.core.cache import caches

    if hasattr(caches["embeddings"], "estimated_size"):
        assert reported >= embeddings_cached
    else:
        assert reported == embeddings_cached
