"""The handshake (SPEC §3 "Meta"): a first-person continuity text built by a fixed
template, reused for 24 hours, expiring after 7 days, deleted by a daily schedule."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from memories.models import Tier
from reflections import tasks
from reflections.models import Handshake, MetaReflection, ReflectionType
from tests.api_paths import HANDSHAKE
from tests.factories import make_memories

pytestmark = pytest.mark.django_db

GENERATE = "/api/v1/meta/handshake/generate"
HISTORY = "/api/v1/meta/handshake/history"
THREAD = "research_thread"


def current(api) -> dict:
    response = api.get(HANDSHAKE)
    assert response.status_code == 200
    return response.json()["data"]


def generate(post_json, body=None) -> dict:
    response = post_json(GENERATE, body or {})
    assert response.status_code == 200
    return response.json()["data"]


def text_of(post_json) -> str:
    return generate(post_json)["handshake"]["promptText"]


def moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def minutes_ago(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


@pytest.fixture
def weighted_memories():
    """Five memories by φ; the two at φ 2.0 differ only in access count."""
    return {
        m.content: m
        for m in make_memories(
            [
                {"content": "Dana and I are designing Anima, a memory service for assistants that lasts", "resonance_phi": 4.0},
                {"content": "Dana prefers PostgreSQL for everything.", "resonance_phi": 3.0},
                {"content": "The deploy runs on Tuesdays.", "resonance_phi": 2.0, "access_count": 1},
                {"content": "Reviews happen in the morning.", "resonance_phi": 2.0, "access_count": 9},
                {"content": "A minor note about fonts.", "resonance_phi": 1.0},
            ],
            with_embeddings=False,
        )
    }


@pytest.fixture
def open_threads(weighted_memories):
    """Research threads of φ 0: three open ones newest first, an older open one, a newer
    stable one and a newer deleted one."""
    make_memories(
        [
            {"content": "Stable thread, settled.", "category": THREAD, "tier": Tier.STABLE, "created_at": minutes_ago(1)},
            {"content": "Deleted thread.", "category": THREAD, "created_at": minutes_ago(1), "deleted_at": timezone.now()},
            {"content": "Newest open thread.", "category": THREAD, "tier": Tier.ACTIVE, "created_at": minutes_ago(2)},
            {"content": "Second open thread.", "category": THREAD, "tier": Tier.THREAD, "created_at": minutes_ago(3)},
            {"content": "Third open thread.", "category": THREAD, "tier": Tier.ACTIVE, "created_at": minutes_ago(4)},
            {"content": "Oldest open thread.", "category": THREAD, "tier": Tier.ACTIVE, "created_at": minutes_ago(5)},
        ],
        with_embeddings=False,
    )


# --- reuse and generation ----------------------------------------------------------------------


def test_first_handshake_is_created(api):
    data = current(api)

    assert data["created"] is True
    assert Handshake.objects.get().pk == data["handshake"]["id"]


def test_handshake_is_reused_within_24_hours(api):
    first = current(api)
    Handshake.objects.update(created_at=timezone.now() - timedelta(hours=23))

    second = current(api)

    assert second["created"] is False
    assert second["handshake"]["id"] == first["handshake"]["id"]
    assert Handshake.objects.count() == 1


def test_handshake_older_than_24_hours_is_not_reused(api):
    first = current(api)
    Handshake.objects.update(created_at=timezone.now() - timedelta(hours=25))

    second = current(api)

    assert second["created"] is True
    assert second["handshake"]["id"] != first["handshake"]["id"]
    assert Handshake.objects.count() == 2


def test_expired_handshake_is_not_reused(api):
    first = current(api)
    Handshake.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    second = current(api)

    assert second["created"] is True
    assert second["handshake"]["id"] != first["handshake"]["id"]


def test_generate_makes_a_new_handshake_by_default(api, post_json):
    first = current(api)

    generated = generate(post_json)

    assert generated["created"] is True
    assert generated["handshake"]["id"] != first["handshake"]["id"]
    assert Handshake.objects.count() == 2


def test_generate_without_force_reuses_the_recent_one(api, post_json):
    first = current(api)

    generated = generate(post_json, {"force": False})

    assert generated["created"] is False
    assert generated["handshake"]["id"] == first["handshake"]["id"]


def test_generate_without_force_creates_when_there_is_none(post_json):
    assert generate(post_json, {"force": False})["created"] is True


@pytest.mark.parametrize("body, field", [({"force": "yes"}, "force"), ({"fresh": True}, "fresh")])
def test_generate_rejects_bad_input(post_json, body, field):
    response = post_json(GENERATE, body)

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]
    assert Handshake.objects.count() == 0


def test_expiry_is_seven_days_after_creation(api):
    handshake = current(api)["handshake"]

    lifetime = moment(handshake["expiresAt"]) - moment(handshake["createdAt"])

    assert lifetime == timedelta(days=7)
    assert abs(moment(handshake["createdAt"]) - timezone.now()) < timedelta(seconds=5)


# --- the text ------------------------------------------------------------------------------------


def test_text_is_deterministic_for_the_same_data(post_json, open_threads):
    MetaReflection.objects.create(
        namespace="default", reflection_type=ReflectionType.MANUAL, recommendations=["Keep going."]
    )

    first, second = generate(post_json)["handshake"], generate(post_json)["handshake"]

    assert first["id"] != second["id"]
    assert first["promptText"] == second["promptText"]


def test_text_opens_with_the_theme_of_the_highest_phi_memory(post_json, weighted_memories):
    text = text_of(post_json)

    opening = text.split("The memories I lean on most")[0]
    assert "Dana and I are designing Anima, a memory…" in opening


def test_theme_is_the_category_of_the_highest_phi_memory_when_it_has_one(post_json):
    make_memories(
        [
            {"content": "Graph layouts for the memory browser.", "category": "memory_visualisation", "resonance_phi": 2.0},
            {"content": "Lunch is at noon.", "category": "daily_routine", "resonance_phi": 1.0},
        ],
        with_embeddings=False,
    )

    opening = text_of(post_json).split("The memories I lean on most")[0]

    assert "memory visualisation" in opening
    assert "daily routine" not in opening


def test_text_names_the_top_3_by_phi_then_access_count(post_json, weighted_memories):
    text = text_of(post_json)

    names = ["Dana and I are designing Anima", "Dana prefers PostgreSQL", "Reviews happen in the morning."]
    positions = [text.index(name) for name in names]
    assert positions == sorted(positions)
    assert "The deploy runs on Tuesdays." not in text
    assert "A minor note about fonts." not in text


def test_top_memories_are_stored_with_their_phi(post_json, weighted_memories):
    top = generate(post_json)["handshake"]["topMemories"]

    assert [(m["content"], m["phi"]) for m in top] == [
        ("Dana and I are designing Anima, a memory service for assistants that lasts", 4.0),
        ("Dana prefers PostgreSQL for everything.", 3.0),
        ("Reviews happen in the morning.", 2.0),
    ]
    assert top[2]["id"] == str(weighted_memories["Reviews happen in the morning."].pk)


def test_text_lists_the_newest_3_open_threads_labelled_alpha_beta_gamma(post_json, open_threads):
    text = text_of(post_json)

    assert "α “Newest open thread.”; β “Second open thread.”; γ “Third open thread.”" in text


def test_text_leaves_out_older_stable_and_deleted_threads(post_json, open_threads):
    text = text_of(post_json)

    assert "Oldest open thread." not in text
    assert "Stable thread, settled." not in text
    assert "Deleted thread." not in text


def test_text_has_no_thread_section_without_open_threads(post_json, weighted_memories):
    text = text_of(post_json)

    assert "Open threads" not in text
    assert "α" not in text


def test_text_includes_the_latest_reflections_recommendation(post_json, weighted_memories):
    MetaReflection.objects.create(
        namespace="default",
        reflection_type=ReflectionType.CONVERSATION_END,
        recommendations=["Load a smaller bootstrap next time."],
        created_at=timezone.now() - timedelta(hours=2),
    )
    MetaReflection.objects.create(
        namespace="default",
        reflection_type=ReflectionType.CONVERSATION_END,
        recommendations=["Pass a conversationId with queries."],
        created_at=timezone.now() - timedelta(hours=1),
    )

    text = text_of(post_json)

    assert "Pass a conversationId with queries." in text
    assert "smaller bootstrap" not in text


def test_text_has_no_recommendation_without_reflections(post_json, weighted_memories):
    assert "Last time I noted" not in text_of(post_json)


def test_text_ends_with_an_invitation(post_json, open_threads):
    text = text_of(post_json)

    assert text.rstrip().endswith("?")
    assert "continue" in text.rsplit(".", 1)[-1]


def test_text_for_an_empty_namespace_says_it_starts_fresh(post_json):
    text = text_of(post_json)

    assert "fresh" in text
    assert generate(post_json)["handshake"]["topMemories"] == []


def test_text_ignores_other_namespaces(post_json):
    make_memories([{"content": "Someone else's memory.", "resonance_phi": 5.0}], namespace="other", with_embeddings=False)

    assert "Someone else's memory." not in text_of(post_json)


# --- history ---------------------------------------------------------------------------------------


def make_handshakes(count: int) -> list[Handshake]:
    """Handshakes created an hour apart, newest first."""
    now = timezone.now()
    return [
        Handshake.objects.create(
            namespace="default", prompt_text=f"handshake {i}", created_at=now - timedelta(hours=i), expires_at=now + timedelta(days=6)
        )
        for i in range(count)
    ]


def history_ids(response) -> list[int]:
    return [h["id"] for h in response.json()["data"]["handshakes"]]


def test_history_is_newest_first_limit_10_by_default(api):
    handshakes = make_handshakes(12)

    response = api.get(HISTORY)

    assert response.status_code == 200
    assert history_ids(response) == [h.pk for h in handshakes[:10]]


def test_history_limit_up_to_100(api):
    make_handshakes(12)

    assert api.get(HISTORY, {"limit": 100}).json()["data"]["count"] == 12
    assert history_ids(api.get(HISTORY, {"limit": 1})) == [Handshake.objects.latest("created_at").pk]


def test_history_entries_carry_expiry(api):
    make_handshakes(1)

    (entry,) = api.get(HISTORY).json()["data"]["handshakes"]

    assert {"id", "promptText", "topMemories", "createdAt", "expiresAt"} <= set(entry)


@pytest.mark.parametrize("limit", [0, 101, "ten"])
def test_history_rejects_a_limit_out_of_range(api, limit):
    response = api.get(HISTORY, {"limit": limit})

    assert response.status_code == 400
    assert "limit" in response.json()["error"]["details"]["fields"]


# --- expiry clean-up ------------------------------------------------------------------------------


def test_delete_expired_handshakes_removes_only_expired_ones(api):
    now = timezone.now()
    Handshake.objects.create(namespace="default", prompt_text="expired", expires_at=now - timedelta(seconds=1))
    Handshake.objects.create(namespace="other", prompt_text="expired elsewhere", expires_at=now - timedelta(days=1))
    kept = Handshake.objects.create(namespace="default", prompt_text="still valid", expires_at=now + timedelta(hours=1))

    deleted = tasks.delete_expired_handshakes()

    assert deleted == 2
    assert list(Handshake.objects.values_list("pk", flat=True)) == [kept.pk]


def test_delete_expired_handshakes_twice_deletes_nothing_more():
    Handshake.objects.create(namespace="default", prompt_text="expired", expires_at=timezone.now() - timedelta(days=1))
    tasks.delete_expired_handshakes()

    assert tasks.delete_expired_handshakes() == 0


def test_expired_handshakes_are_deleted_by_a_daily_schedule():
    schedule = Schedule.objects.get(name="anima: expired handshakes")

    assert schedule.func == "reflections.tasks.delete_expired_handshakes"
    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.repeats == -1
