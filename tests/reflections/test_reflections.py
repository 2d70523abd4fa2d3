"""Reflections (SPEC §3 "Meta"): the service's own numbers about a conversation
(``/meta/conversation-end``, ``/meta/reflection``, ``/meta/manual-reflection``) and the
assistant's subjective view (``/reflection/conversation-end``, ``history``, ``stats``)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from memories.models import MemoryAssociation, Tier
from reflections.models import ConversationReflection, MetaReflection, ReflectionType
from tests.api_paths import MANUAL, REFLECTION_END
from tests.api_paths import CONVERSATION_END as META_END
from tests.factories import make_memories

pytestmark = pytest.mark.django_db

META_REFLECTION = "/api/v1/meta/reflection"
HISTORY = "/api/v1/reflection/history"
STATS = "/api/v1/reflection/stats"


def session(**overrides) -> dict:
    """Session metrics of a calm conversation (smooth, every rule quiet but the hub one)."""
    metrics = {
        "memories_loaded": 10,
        "memories_accessed": 8,  # waste 0.2: neither "little" nor "most"
        "context_load_time_ms": 100,
        "queries_executed": 2,
        "total_results_returned": 20,  # 10 per query
        "total_relevance_score": 12.0,  # avg relevance 0.6
        "relevant_results": 14,  # hit rate 0.7
    }
    metrics.update(overrides)
    return metrics


def reflect(post_json, conversation_id="conv-1", **overrides) -> dict:
    response = post_json(META_END, {"conversationId": conversation_id, "sessionMetrics": session(**overrides)})
    assert response.status_code == 201, response.json()
    return response.json()["data"]["reflection"]


def mentions(sentences: list[str], words: str) -> bool:
    return any(words.lower() in sentence.lower() for sentence in sentences)


def make_hub(connections: int, *, content: str = "the hub memory", tier: str = Tier.STABLE) -> None:
    """One memory associated with ``connections`` others (pairs stored ordered, a < b)."""
    hub, *others = make_memories(
        [{"content": content, "tier": tier}]
        + [{"content": f"spoke {i} of {content}", "tier": tier} for i in range(connections)],
        with_embeddings=False,
    )
    MemoryAssociation.objects.bulk_create(
        [
            MemoryAssociation(
                namespace="default",
                memory_a_id=min(hub.pk, other.pk),
                memory_b_id=max(hub.pk, other.pk),
                co_occurrence_count=2,
                strength=0.5,
            )
            for other in others
        ]
    )


def make_tiers(**counts) -> None:
    make_memories(
        [{"content": f"{tier} {i}", "tier": tier} for tier, count in counts.items() for i in range(count)],
        with_embeddings=False,
    )


# --- POST /meta/conversation-end: the stored reflection ---------------------------------------


def test_conversation_end_answers_201_with_the_reflection(post_json):
    response = post_json(META_END, {"conversationId": "conv-1", "sessionMetrics": session()})

    assert response.status_code == 201
    reflection = response.json()["data"]["reflection"]
    assert reflection["reflectionType"] == "conversation_end"
    assert reflection["conversationId"] == "conv-1"
    assert reflection["createdAt"]


def test_conversation_end_stores_one_meta_reflection(post_json):
    reflection = reflect(post_json)

    row = MetaReflection.objects.get()
    assert str(row.pk) == str(reflection["id"])
    assert row.reflection_type == ReflectionType.CONVERSATION_END
    assert row.conversation_id == "conv-1"
    assert row.metrics == reflection["metrics"]
    assert row.insights == reflection["insights"]
    assert row.recommendations == reflection["recommendations"]


def test_session_metrics_are_stored_untouched_with_unknown_keys(post_json):
    metrics = session(client="claude-desktop", clientVersion="1.2.3", extra={"nested": [1, 2.5, None]})

    response = post_json(META_END, {"conversationId": "conv-1", "sessionMetrics": metrics})

    assert response.json()["data"]["reflection"]["sessionMetrics"] == metrics
    assert MetaReflection.objects.get().session_metrics == metrics


# --- friction ------------------------------------------------------------------------------------


def test_waste_ratio_is_unused_share_of_loaded_with_2_decimals(post_json):
    friction = reflect(post_json, memories_loaded=3, memories_accessed=1)["metrics"]["friction"]

    assert friction["wasteRatio"] == 0.67


def test_waste_ratio_is_0_when_nothing_was_loaded(post_json):
    friction = reflect(post_json, memories_loaded=0, memories_accessed=0)["metrics"]["friction"]

    assert friction["wasteRatio"] == 0


def test_feel_is_rough_when_waste_is_over_half(post_json):
    reflection = reflect(post_json, memories_loaded=10, memories_accessed=4)  # waste 0.6

    assert reflection["metrics"]["friction"]["feel"] == "rough"
    assert mentions(reflection["insights"], "rough")


def test_feel_is_sticky_not_rough_at_exactly_half(post_json):
    reflection = reflect(post_json, memories_loaded=10, memories_accessed=5)  # waste 0.5

    assert reflection["metrics"]["friction"]["feel"] == "sticky"


def test_feel_is_sticky_when_waste_is_over_0_3(post_json):
    reflection = reflect(post_json, memories_loaded=10, memories_accessed=6)  # waste 0.4

    assert reflection["metrics"]["friction"]["feel"] == "sticky"
    assert mentions(reflection["insights"], "sticky")


def test_feel_is_smooth_at_exactly_0_3_waste(post_json):
    reflection = reflect(post_json, memories_loaded=10, memories_accessed=7)  # waste 0.3

    assert reflection["metrics"]["friction"]["feel"] == "smooth"


def test_feel_is_sticky_when_loading_took_over_500_ms(post_json):
    reflection = reflect(post_json, memories_loaded=10, memories_accessed=10, context_load_time_ms=501)

    assert reflection["metrics"]["friction"]["feel"] == "sticky"


def test_feel_is_smooth_with_little_waste_and_500_ms(post_json):
    reflection = reflect(post_json, memories_loaded=10, memories_accessed=9, context_load_time_ms=500)

    assert reflection["metrics"]["friction"]["feel"] == "smooth"
    assert mentions(reflection["insights"], "smoothly")


# --- retrieval -----------------------------------------------------------------------------------


def test_avg_results_per_query_is_rounded(post_json):
    retrieval = reflect(post_json, queries_executed=3, total_results_returned=20)["metrics"]["retrieval"]

    assert retrieval["avgResultsPerQuery"] == 7  # 6.67


def test_avg_relevance_is_total_relevance_over_total_results(post_json):
    retrieval = reflect(post_json, total_results_returned=9, total_relevance_score=5.0)["metrics"]["retrieval"]

    assert retrieval["avgRelevance"] == 0.56  # 0.5556


def test_hit_rate_is_relevant_over_total_results_with_2_decimals(post_json):
    retrieval = reflect(post_json, total_results_returned=9, relevant_results=2)["metrics"]["retrieval"]

    assert retrieval["hitRate"] == 0.22


def test_no_results_give_no_relevance_no_hit_rate_and_no_words_about_them(post_json):
    reflection = reflect(post_json, total_results_returned=0, total_relevance_score=0, relevant_results=0)

    assert reflection["metrics"]["retrieval"]["avgRelevance"] is None
    assert reflection["metrics"]["retrieval"]["hitRate"] is None
    assert not mentions(reflection["insights"], "relevant")
    assert not mentions(reflection["recommendations"], "hit rate")


# --- insights ------------------------------------------------------------------------------------


def test_insight_little_waste_below_0_2(post_json):
    insights = reflect(post_json, memories_loaded=10, memories_accessed=9)["insights"]

    assert mentions(insights, "little context was wasted")


def test_insight_most_unused_above_half(post_json):
    insights = reflect(post_json, memories_loaded=10, memories_accessed=2)["insights"]

    assert mentions(insights, "never used")


def test_insight_no_waste_sentence_in_between(post_json):
    insights = reflect(post_json)["insights"]  # waste 0.2

    assert not mentions(insights, "wasted")
    assert not mentions(insights, "never used")


def test_insight_high_hit_rate_above_0_8(post_json):
    insights = reflect(post_json, total_results_returned=10, relevant_results=9)["insights"]

    assert mentions(insights, "hit the mark")


def test_insight_low_hit_rate_below_half(post_json):
    insights = reflect(post_json, total_results_returned=10, relevant_results=4)["insights"]

    assert mentions(insights, "missed")


def test_insight_high_relevance_above_0_7(post_json):
    insights = reflect(post_json, total_results_returned=10, total_relevance_score=8.0)["insights"]

    assert mentions(insights, "highly relevant")


def test_insight_weak_relevance_below_half(post_json):
    insights = reflect(post_json, total_results_returned=10, total_relevance_score=4.0)["insights"]

    assert mentions(insights, "weakly relevant")


def test_insight_active_tier_over_a_fifth(post_json):
    make_tiers(active=1, stable=3)  # 25 % active

    insights = reflect(post_json)["insights"]

    assert mentions(insights, "25% of memories are still in the active tier")


def test_no_active_tier_insight_at_exactly_a_fifth(post_json):
    make_tiers(active=1, stable=4)

    insights = reflect(post_json)["insights"]

    assert not mentions(insights, "active tier")


def test_insight_mature_when_stable_over_70_percent(post_json):
    make_tiers(stable=8, thread=2)

    insights = reflect(post_json)["insights"]

    assert mentions(insights, "mature")


def test_insight_names_the_top_hub_connection_count(post_json):
    make_hub(3)

    insights = reflect(post_json)["insights"]

    assert mentions(insights, "hub connects 3")


# --- recommendations -----------------------------------------------------------------------------


def test_recommend_smaller_bootstrap_when_waste_over_0_4(post_json):
    recommendations = reflect(post_json, memories_loaded=100, memories_accessed=59)["recommendations"]

    assert mentions(recommendations, "smaller bootstrap")


def test_no_smaller_bootstrap_at_0_4_waste(post_json):
    recommendations = reflect(post_json, memories_loaded=10, memories_accessed=6)["recommendations"]

    assert not mentions(recommendations, "smaller bootstrap")


def test_recommend_faster_loading_over_300_ms(post_json):
    recommendations = reflect(post_json, context_load_time_ms=301)["recommendations"]

    assert mentions(recommendations, "loading is slow")


def test_recommend_threshold_or_sharper_queries_when_hit_rate_below_0_6(post_json):
    recommendations = reflect(post_json, total_results_returned=10, relevant_results=5)["recommendations"]

    assert mentions(recommendations, "threshold or sharpen the queries")


def test_recommend_fewer_results_when_over_50_per_query(post_json):
    recommendations = reflect(post_json, queries_executed=1, total_results_returned=60, relevant_results=50)["recommendations"]

    assert mentions(recommendations, "many results")


def test_recommend_more_results_when_under_5_per_query(post_json):
    recommendations = reflect(post_json, queries_executed=4, total_results_returned=8, relevant_results=8)["recommendations"]

    assert mentions(recommendations, "few results")


def test_no_few_results_recommendation_without_queries(post_json):
    recommendations = reflect(post_json, queries_executed=0, total_results_returned=0)["recommendations"]

    assert not mentions(recommendations, "few results")


def test_recommend_promotion_review_when_active_over_30_percent(post_json):
    make_tiers(active=2, stable=2)

    recommendations = reflect(post_json)["recommendations"]

    assert mentions(recommendations, "promotion thresholds")


def test_no_promotion_review_at_exactly_30_percent_active(post_json):
    make_tiers(active=3, stable=7)

    recommendations = reflect(post_json)["recommendations"]

    assert not mentions(recommendations, "promotion thresholds")


def test_recommend_tiering_review_when_network_over_half(post_json):
    make_tiers(network=3, stable=2)

    recommendations = reflect(post_json)["recommendations"]

    assert mentions(recommendations, "network tier")


def test_recommend_conversation_ids_when_there_are_no_hubs(post_json):
    recommendations = reflect(post_json)["recommendations"]

    assert mentions(recommendations, "No hubs yet")


def test_recommend_splitting_a_hub_over_20_connections(post_json):
    make_hub(21)

    recommendations = reflect(post_json)["recommendations"]

    assert mentions(recommendations, "splitting")
    assert not mentions(recommendations, "No hubs yet")


def test_calm_conversation_with_a_small_hub_gets_no_recommendation(post_json):
    make_hub(3)

    recommendations = reflect(post_json)["recommendations"]

    assert recommendations == []


# --- tier distribution and hubs ------------------------------------------------------------------


def test_reflection_carries_the_tier_distribution(post_json):
    make_tiers(active=2, thread=1, stable=3)

    distribution = reflect(post_json)["metrics"]["tierDistribution"]

    assert distribution == {"active": 2, "thread": 1, "stable": 3, "network": 0, "total": 6}


def test_reflection_lists_hubs_with_a_100_character_preview(post_json):
    make_hub(3, content="h" * 150)
    make_hub(2, content="too few connections")

    hubs = reflect(post_json)["metrics"]["hubs"]

    assert len(hubs) == 1
    assert hubs[0]["preview"] == "h" * 100
    assert hubs[0]["totalConnections"] == 3


# --- GET /meta/reflection and POST /meta/manual-reflection -----------------------------------------


@pytest.fixture
def three_reflections(post_json):
    """conv-a conversation_end, conv-a manual, conv-b conversation_end (in that order)."""
    first = reflect(post_json, "conv-a")
    second = post_json(MANUAL, {"conversationId": "conv-a", "sessionMetrics": session()}).json()["data"]["reflection"]
    third = reflect(post_json, "conv-b")
    return first, second, third


def ids(response) -> list:
    return [r["id"] for r in response.json()["data"]["reflections"]]


def test_reflection_limit_defaults_to_1_the_newest(api, three_reflections):
    response = api.get(META_REFLECTION)

    assert response.status_code == 200
    assert ids(response) == [three_reflections[2]["id"]]


def test_reflection_lists_newest_first(api, three_reflections):
    response = api.get(META_REFLECTION, {"limit": 50})

    assert ids(response) == [r["id"] for r in reversed(three_reflections)]
    assert response.json()["data"]["count"] == 3


def test_reflection_filters_by_conversation(api, three_reflections):
    response = api.get(META_REFLECTION, {"conversationId": "conv-a", "limit": 10})

    assert ids(response) == [three_reflections[1]["id"], three_reflections[0]["id"]]


def test_reflection_filters_by_type(api, three_reflections):
    response = api.get(META_REFLECTION, {"reflectionType": "conversation_end", "limit": 10})

    assert ids(response) == [three_reflections[2]["id"], three_reflections[0]["id"]]


def test_reflection_filters_combine_with_and(api, three_reflections):
    response = api.get(META_REFLECTION, {"conversationId": "conv-b", "reflectionType": "manual", "limit": 10})

    assert ids(response) == []


def test_reflection_conversation_and_type_select_one(api, three_reflections):
    response = api.get(META_REFLECTION, {"conversationId": "conv-a", "reflectionType": "conversation_end", "limit": 10})

    assert ids(response) == [three_reflections[0]["id"]]


def test_manual_reflection_is_stored_as_manual(post_json):
    response = post_json(MANUAL, {"sessionMetrics": session()})

    assert response.status_code == 201
    assert response.json()["data"]["reflection"]["reflectionType"] == "manual"
    row = MetaReflection.objects.get()
    assert row.reflection_type == ReflectionType.MANUAL
    assert row.conversation_id is None


def test_manual_reflection_without_metrics_is_smooth_and_empty(post_json):
    response = post_json(MANUAL, {})

    assert response.status_code == 201
    reflection = response.json()["data"]["reflection"]
    assert reflection["sessionMetrics"] == {}
    assert reflection["metrics"]["friction"] == {"wasteRatio": 0, "feel": "smooth"}


# --- POST /reflection/conversation-end ---------------------------------------------------------


def test_subjective_reflection_is_created_with_its_fields(post_json):
    body = {
        "conversationId": "conv-9",
        "contextQuality": 1,
        "continuityScore": 10,
        "neededCorrection": True,
        "hadEmergenceMoment": True,
        "surprises": "s" * 1000,
        "frictionNotes": "f" * 1000,
        "generalNotes": "g" * 2000,
    }

    response = post_json(REFLECTION_END, body)

    assert response.status_code == 201
    reflection = response.json()["data"]["reflection"]
    assert {key: reflection[key] for key in body} == body
    row = ConversationReflection.objects.get()
    assert (row.conversation_id, row.context_quality, row.continuity_score) == ("conv-9", 1, 10)
    assert row.needed_correction and row.had_emergence_moment
    assert len(row.general_notes) == 2000


def test_subjective_reflection_needs_only_a_conversation_id(post_json):
    response = post_json(REFLECTION_END, {"conversationId": "c" * 200})

    assert response.status_code == 201
    reflection = response.json()["data"]["reflection"]
    assert reflection["contextQuality"] is None
    assert reflection["neededCorrection"] is False
    assert reflection["surprises"] == ""


# --- GET /reflection/history and /reflection/stats ---------------------------------------------


def subjective(conversation_id="conv-1", hours_ago=0, quality=None, continuity=None, corrected=False, emerged=False):
    return ConversationReflection.objects.create(
        namespace="default",
        conversation_id=conversation_id,
        context_quality=quality,
        continuity_score=continuity,
        needed_correction=corrected,
        had_emergence_moment=emerged,
        reflected_at=timezone.now() - timedelta(hours=hours_ago),
    )


def history_ids(response) -> list[int]:
    return [r["id"] for r in response.json()["data"]["reflections"]]


def test_history_is_newest_first(api):
    old, new, middle = subjective(hours_ago=3), subjective(hours_ago=1), subjective(hours_ago=2)

    response = api.get(HISTORY)

    assert response.status_code == 200
    assert history_ids(response) == [new.pk, middle.pk, old.pk]


def test_history_limit_defaults_to_10(api):
    rows = [subjective(hours_ago=i) for i in range(12)]

    response = api.get(HISTORY)

    assert history_ids(response) == [row.pk for row in rows[:10]]


def test_history_limit_up_to_100(api):
    for i in range(12):
        subjective(hours_ago=i)

    assert api.get(HISTORY, {"limit": 100}).json()["data"]["count"] == 12
    assert api.get(HISTORY, {"limit": 3}).json()["data"]["count"] == 3


def test_history_filters_by_conversation(api):
    mine = subjective("conv-a", hours_ago=1)
    subjective("conv-b")

    response = api.get(HISTORY, {"conversationId": "conv-a"})

    assert history_ids(response) == [mine.pk]


def test_history_filters_by_minimum_quality(api):
    good, fair = subjective(quality=8, hours_ago=1), subjective(quality=5, hours_ago=2)
    subjective(quality=4)
    subjective(quality=None)

    response = api.get(HISTORY, {"minQuality": 5})

    assert history_ids(response) == [good.pk, fair.pk]


def test_stats_average_the_scores_and_count_flags(api):
    subjective(quality=7, continuity=9, corrected=True, hours_ago=3)
    subjective(quality=8, continuity=None, emerged=True, hours_ago=2)
    subjective(quality=8, continuity=6, corrected=True, emerged=True, hours_ago=1)
    subjective(quality=None, continuity=None)

    stats = api.get(STATS).json()["data"]

    assert stats["totalReflections"] == 4
    assert stats["avgContextQuality"] == 7.67
    assert stats["avgContinuityScore"] == 7.5
    assert stats["correctionsNeeded"] == 2
    assert stats["emergenceMoments"] == 2


def test_stats_give_first_and_last_reflection_times(api):
    first = subjective(hours_ago=5)
    subjective(hours_ago=2)
    last = subjective(hours_ago=0)

    stats = api.get(STATS).json()["data"]

    assert stats["firstReflectionAt"].replace("Z", "+00:00") == first.reflected_at.isoformat()
    assert stats["lastReflectionAt"].replace("Z", "+00:00") == last.reflected_at.isoformat()


def test_stats_of_an_empty_namespace_are_zero_and_null(api):
    stats = api.get(STATS).json()["data"]

    assert stats["totalReflections"] == 0
    assert stats["avgContextQuality"] is None
    assert stats["firstReflectionAt"] is None


def test_stats_count_only_this_namespace(api):
    subjective(quality=9)
    ConversationReflection.objects.create(namespace="other", conversation_id="x", context_quality=1)

    stats = api.get(STATS).json()["data"]

    assert stats["totalReflections"] == 1
    assert stats["avgContextQuality"] == 9


# --- bad input: 400 naming the field, nothing written ------------------------------------------


def assert_rejected(response, field: str):
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"]
    assert field in error["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"contextQuality": 0}, "contextQuality", id="quality-0"),
        pytest.param({"contextQuality": 11}, "contextQuality", id="quality-11"),
        pytest.param({"continuityScore": 0}, "continuityScore", id="continuity-0"),
        pytest.param({"continuityScore": 11}, "continuityScore", id="continuity-11"),
        pytest.param({"contextQuality": "7"}, "contextQuality", id="quality-string"),
        pytest.param({"surprises": "s" * 1001}, "surprises", id="surprises-1001"),
        pytest.param({"frictionNotes": "f" * 1001}, "frictionNotes", id="friction-1001"),
        pytest.param({"generalNotes": "g" * 2001}, "generalNotes", id="general-2001"),
        pytest.param({"conversationId": "c" * 201}, "conversationId", id="conversation-201"),
        pytest.param({"conversationId": ""}, "conversationId", id="conversation-empty"),
        pytest.param({"neededCorrection": "yes"}, "neededCorrection", id="correction-not-boolean"),
        pytest.param({"mood": "great"}, "mood", id="unknown-key"),
    ],
)
def test_subjective_reflection_rejects_bad_input(post_json, body, field):
    response = post_json(REFLECTION_END, {"conversationId": "conv-1", **body})

    assert_rejected(response, field)
    assert ConversationReflection.objects.count() == 0


def test_subjective_reflection_rejects_a_missing_conversation_id(post_json):
    response = post_json(REFLECTION_END, {"contextQuality": 5})

    assert_rejected(response, "conversationId")
    assert ConversationReflection.objects.count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"conversationId": "c" * 201, "sessionMetrics": {}}, "conversationId", id="conversation-201"),
        pytest.param({"sessionMetrics": {}}, "conversationId", id="conversation-missing"),
        pytest.param({"conversationId": 7, "sessionMetrics": {}}, "conversationId", id="conversation-number"),
        pytest.param({"conversationId": "c", "sessionMetrics": [1, 2]}, "sessionMetrics", id="metrics-list"),
        pytest.param({"conversationId": "c", "sessionMetrics": "fast"}, "sessionMetrics", id="metrics-string"),
        pytest.param({"conversationId": "c", "sessionMetrics": {"memories_loaded": -1}}, "sessionMetrics", id="negative-loaded"),
        pytest.param({"conversationId": "c", "sessionMetrics": {"relevant_results": -0.5}}, "sessionMetrics", id="negative-relevant"),
        pytest.param({"conversationId": "c", "sessionMetrics": {"queries_executed": "3"}}, "sessionMetrics", id="counter-string"),
        pytest.param({"conversationId": "c", "sessionMetrics": {"queries_executed": True}}, "sessionMetrics", id="counter-boolean"),
        pytest.param({"conversationId": "c", "sessionMetrics": {}, "mood": "ok"}, "mood", id="unknown-key"),
    ],
)
def test_conversation_end_rejects_bad_input(post_json, body, field):
    response = post_json(META_END, body)

    assert_rejected(response, field)
    assert MetaReflection.objects.count() == 0


def test_conversation_end_names_the_negative_counter(post_json):
    response = post_json(META_END, {"conversationId": "c", "sessionMetrics": {"context_load_time_ms": -3}})

    assert response.status_code == 400
    assert "context_load_time_ms" in response.json()["error"]["details"]["fields"]["sessionMetrics"][0]


def test_manual_reflection_rejects_metrics_that_are_not_an_object(post_json):
    response = post_json(MANUAL, {"sessionMetrics": ["memories_loaded", 3]})

    assert_rejected(response, "sessionMetrics")
    assert MetaReflection.objects.count() == 0


@pytest.mark.parametrize(
    "params, field",
    [
        pytest.param({"reflectionType": "daily"}, "reflectionType", id="type-daily"),
        pytest.param({"limit": 0}, "limit", id="limit-0"),
        pytest.param({"limit": 51}, "limit", id="limit-51"),
        pytest.param({"limit": "many"}, "limit", id="limit-word"),
        pytest.param({"conversationId": "c" * 201}, "conversationId", id="conversation-201"),
        pytest.param({"since": "yesterday"}, "since", id="unknown-parameter"),
    ],
)
def test_reflection_query_rejects_bad_parameters(api, params, field):
    assert_rejected(api.get(META_REFLECTION, params), field)


def test_reflection_query_accepts_limit_50(api):
    assert api.get(META_REFLECTION, {"limit": 50}).status_code == 200


@pytest.mark.parametrize(
    "params, field",
    [
        pytest.param({"limit": 0}, "limit", id="limit-0"),
        pytest.param({"limit": 101}, "limit", id="limit-101"),
        pytest.param({"minQuality": 0}, "minQuality", id="min-quality-0"),
        pytest.param({"minQuality": 11}, "minQuality", id="min-quality-11"),
        pytest.param({"conversationId": "c" * 201}, "conversationId", id="conversation-201"),
        pytest.param({"order": "asc"}, "order", id="unknown-parameter"),
    ],
)
def test_history_rejects_bad_parameters(api, params, field):
    assert_rejected(api.get(HISTORY, params), field)


def test_average_results_per_query_rounds_halves_up(post_json):
    response = post_json(
        "/api/v1/meta/conversation-end",
        {"conversationId": "halves", "sessionMetrics": {"queries_executed": 2, "total_results_returned": 9}},
    )

    assert response.json()["data"]["reflection"]["metrics"]["retrieval"]["avgResultsPerQuery"] == 5
