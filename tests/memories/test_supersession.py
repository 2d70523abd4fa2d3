"""Facts that change: corrections supersede, default reads see current facts, ``asOf`` sees
the past, ``expiresAt`` retires a fact — against the real PostgreSQL and the bundled model."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from memories.models import Memory
from memories.services.consolidation import memory_consolidate
from tests.api_paths import ADD, ADD_BATCH, BOOTSTRAP, HANDSHAKE, MEMORIES, QUERY
from tests.responses import bad_fields

pytestmark = pytest.mark.django_db

ALLERGIC = "Dana is allergic to peanuts."
NOT_ALLERGIC = "Dana is not allergic to peanuts."
OUTGREW = "Dana outgrew her peanut allergy in 2025."
QUESTION = "Is Dana allergic to peanuts?"


def correct_url(memory_id) -> str:
    return f"{MEMORIES}{memory_id}/correct"


def detail(memory_id) -> str:
    return f"{MEMORIES}{memory_id}/"


def query_ids(post_json, question=QUESTION, **extra) -> list[str]:
    response = post_json(QUERY, {"query": question, "similarityThreshold": 0.0, "limit": 20, **extra})
    assert response.status_code == 200, response.json()
    return [hit["id"] for hit in response.json()["data"]["memories"]]


def correct(post_json, memory_id, content, status=201, **fields):
    response = post_json(correct_url(memory_id), {"content": content, **fields})
    assert response.status_code == status, response.json()
    return response.json()["data"]


def snapshot() -> list[tuple]:
    """Every memory's supersession state, to show that a refused request wrote nothing."""
    return list(
        Memory.objects.order_by("pk").values_list(
            "pk", "superseded_by_id", "supersedes", "valid_until", "access_count", "deleted_at"
        )
    )


# --- correct -------------------------------------------------------------------------------


def test_correct_creates_the_new_memory_and_supersedes_the_old(add, post_json):
    old = add(ALLERGIC, category="health")

    data = correct(post_json, old, NOT_ALLERGIC, category="health")

    new = data["memory"]
    assert new["content"] == NOT_ALLERGIC and new["supersedes"] == [old] and new["supersededBy"] is None
    assert data["corrected"]["id"] == old
    assert data["corrected"]["supersededBy"] == new["id"]
    assert data["corrected"]["validUntil"] is not None
    stored = Memory.objects.get(pk=old)
    assert stored.valid_until == Memory.objects.get(pk=new["id"]).valid_from
    assert stored.content == ALLERGIC and stored.deleted_at is None  # kept in the history


def test_a_corrected_fact_never_comes_back_from_a_default_query(add, post_json):
    old = add(ALLERGIC)
    new = correct(post_json, old, NOT_ALLERGIC)["memory"]["id"]

    for mode in ("hybrid", "semantic"):
        assert query_ids(post_json, mode=mode) == [new]


def test_a_corrected_fact_never_comes_back_from_bootstrap(add, api, post_json):
    old = add(ALLERGIC)
    Memory.objects.filter(pk=old).update(pinned=True)  # even a pinned one
    new = correct(post_json, old, NOT_ALLERGIC)["memory"]["id"]

    branches = api.get(BOOTSTRAP).json()["data"]["memories"]

    shown = [memory["id"] for branch in branches.values() for memory in branch]
    assert shown == [new]


def test_a_corrected_fact_never_comes_back_from_a_handshake(add, api, post_json):
    old = add(ALLERGIC)
    Memory.objects.filter(pk=old).update(resonance_phi=4.0)
    before = api.get(HANDSHAKE).json()["data"]["handshake"]
    assert before["topMemories"][0]["id"] == old  # the handshake quotes it, and is reused for 24 h

    new = correct(post_json, old, NOT_ALLERGIC)["memory"]["id"]
    after = api.get(HANDSHAKE).json()["data"]["handshake"]

    assert old not in {memory["id"] for memory in after["topMemories"]}
    assert ALLERGIC not in after["promptText"]
    assert new in {memory["id"] for memory in after["topMemories"]}


def test_as_of_before_the_correction_returns_the_old_fact_and_not_the_new(add, post_json):
    old = add(ALLERGIC)
    Memory.objects.filter(pk=old).update(valid_from=timezone.now() - timedelta(days=60))
    new = correct(post_json, old, NOT_ALLERGIC)["memory"]["id"]
    Memory.objects.filter(pk=old).update(valid_until=timezone.now() - timedelta(days=7))
    Memory.objects.filter(pk=new).update(valid_from=timezone.now() - timedelta(days=7))
    last_month = (timezone.now() - timedelta(days=30)).isoformat()

    assert query_ids(post_json, asOf=last_month) == [old]
    assert query_ids(post_json, asOf=timezone.now().isoformat()) == [new]
    assert sorted(query_ids(post_json, includeSuperseded=True)) == sorted([old, new])


def test_valid_from_given_by_the_client_answers_as_of_last_month(post_json):
    two_months_ago = (timezone.now() - timedelta(days=60)).isoformat()
    a_week_ago = (timezone.now() - timedelta(days=7)).isoformat()
    old = post_json(ADD, {"content": ALLERGIC, "validFrom": two_months_ago}).json()["data"]["memory"]["id"]
    new = correct(post_json, old, NOT_ALLERGIC, validFrom=a_week_ago)["memory"]["id"]

    last_month = (timezone.now() - timedelta(days=30)).isoformat()
    assert query_ids(post_json, asOf=last_month) == [old]
    assert query_ids(post_json) == [new]
    assert query_ids(post_json, asOf=(timezone.now() - timedelta(days=90)).isoformat()) == []


def test_valid_from_in_the_future_or_before_the_corrected_fact_is_a_400(add, post_json):
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
    assert bad_fields(post_json(ADD, {"content": ALLERGIC, "validFrom": tomorrow})) == {"validFrom"}
    old = add(ALLERGIC)
    before = snapshot()

    response = post_json(correct_url(old), {"content": NOT_ALLERGIC, "validFrom": "2020-01-01T00:00:00Z"})

    assert bad_fields(response) == {"validFrom"}
    assert snapshot() == before


def test_a_chain_of_three_corrections_resolves_to_the_last(add, api, post_json):
    first = add("The team meets on Monday at 9.")
    second = correct(post_json, first, "The team meets on Tuesday at 9.")["memory"]["id"]
    third = correct(post_json, second, "The team meets on Tuesday at 10.")["memory"]["id"]

    assert query_ids(post_json, "When does the team meet?") == [third]
    chain, at = [], first
    while at is not None:
        chain.append(at)
        at = api.get(detail(at)).json()["data"]["memory"]["supersededBy"]
    assert chain == [first, second, third]
    assert api.get(detail(third)).json()["data"]["memory"]["supersedes"] == [second]
    # An old link of the chain cannot be corrected again: its successor is named.
    response = post_json(correct_url(first), {"content": "The team meets on Friday."})
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"memoryId": first, "supersededBy": second}


@pytest.mark.django_db(transaction=True)
def test_concurrent_corrections_of_one_memory_make_one_winner_and_a_409(api, api_key_for):
    key = api_key_for("write")
    old = api.post(ADD, {"content": ALLERGIC}, format="json").json()["data"]["memory"]["id"]
    contents = [NOT_ALLERGIC, OUTGREW, "Dana has never been allergic to anything.", "Dana eats peanuts daily."]
    barrier = threading.Barrier(len(contents))
    answers, errors = [], []

    def correct_once(content):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
            barrier.wait()
            answers.append(client.post(correct_url(old), {"content": content}, format="json"))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=correct_once, args=(content,)) for content in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409]
    winner = next(a.json()["data"]["memory"]["id"] for a in answers if a.status_code == 201)
    for loser in (a for a in answers if a.status_code == 409):
        assert loser.json()["error"]["details"]["supersededBy"] == winner
    assert str(Memory.objects.get(pk=old).superseded_by_id) == winner
    # The losers' contents were not stored: their add rolled back with the conflict.
    assert Memory.objects.count() == 2


def test_correcting_with_the_content_of_a_live_memory_is_a_409_and_writes_nothing(add, post_json):
    old = add(ALLERGIC)
    other = add(OUTGREW)
    before = snapshot()

    response = post_json(correct_url(old), {"content": OUTGREW})

    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"existingId": other}
    assert snapshot() == before  # not even the duplicate's access


def test_correcting_by_an_existing_memory_confirms_a_suggestion(add, api, post_json):
    old = add(ALLERGIC)
    new = add(NOT_ALLERGIC)  # consolidation links it and suggests the correction
    assert Memory.objects.get(pk=new).metadata["correctionCandidate"]["corrects"] == old

    response = post_json(correct_url(old), {"correctedBy": new})

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["memory"]["supersedes"] == [old]
    memory = Memory.objects.get(pk=new)
    assert "correctionCandidate" not in memory.metadata  # the suggestion is now a fact
    assert query_ids(post_json) == [new]


# --- suggested corrections -------------------------------------------------------------------


def test_an_add_that_may_correct_a_memory_says_so(add, post_json):
    old = add(ALLERGIC)

    response = post_json(ADD, {"content": NOT_ALLERGIC})

    assert response.status_code == 201
    assert response.json()["meta"]["possiblyCorrects"] == [old]
    # A suggestion only: both stay current until someone confirms.
    assert sorted(query_ids(post_json)) == sorted([old, response.json()["data"]["memory"]["id"]])


def test_an_unrelated_add_suggests_nothing(add, post_json):
    add(ALLERGIC)

    response = post_json(ADD, {"content": "The staging server runs Debian 12."})

    assert "possiblyCorrects" not in response.json()["meta"]


def test_a_dismissed_suggestion_is_not_made_again(add):
    old = add(ALLERGIC)
    new = add(NOT_ALLERGIC)
    Memory.objects.filter(pk=new).update(metadata={"correctionDismissed": [old]})

    memory_consolidate(memory_id=uuid.UUID(new))

    assert "correctionCandidate" not in Memory.objects.get(pk=new).metadata


# --- supersedes on add and add-batch ---------------------------------------------------------


def test_add_with_supersedes_corrects_in_the_same_request(add, post_json):
    old = add(ALLERGIC)

    response = post_json(ADD, {"content": NOT_ALLERGIC, "supersedes": [old]})

    assert response.status_code == 201, response.json()
    new = response.json()["data"]["memory"]["id"]
    assert response.json()["data"]["memory"]["supersedes"] == [old]
    assert str(Memory.objects.get(pk=old).superseded_by_id) == new
    assert query_ids(post_json) == [new]


def test_add_batch_with_a_bad_supersedes_names_the_item_and_writes_nothing(add, post_json):
    old = add(ALLERGIC)
    before = snapshot()
    items = [{"content": "The boiler was serviced in March."}, {"content": NOT_ALLERGIC, "supersedes": [str(uuid.uuid4())]}]

    response = post_json(ADD_BATCH, {"items": items})

    assert response.status_code == 404
    assert snapshot() == before
    good = post_json(ADD_BATCH, {"items": [{"content": NOT_ALLERGIC, "supersedes": [old]}]})
    assert good.status_code == 201
    assert Memory.objects.get(pk=old).superseded_by_id is not None


# --- bad input: a 400/404 naming the problem, nothing written --------------------------------


def test_correcting_an_unknown_id_is_404(add, post_json):
    add(ALLERGIC)
    before = snapshot()
    unknown = uuid.uuid4()

    response = post_json(correct_url(unknown), {"content": NOT_ALLERGIC})

    assert response.status_code == 404
    assert response.json()["error"]["details"]["memoryId"] == str(unknown)
    assert snapshot() == before


def test_correcting_a_memory_of_another_namespace_is_404(add, post_json, api_key_for):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('admin', namespace='elsewhere')}")
    theirs = other.post(ADD, {"content": ALLERGIC}, format="json").json()["data"]["memory"]["id"]
    before = snapshot()

    assert post_json(correct_url(theirs), {"content": NOT_ALLERGIC}).status_code == 404
    assert post_json(ADD, {"content": NOT_ALLERGIC, "supersedes": [theirs]}).status_code == 404
    assert snapshot() == before


def test_a_memory_cannot_supersede_itself(add, post_json):
    old = add(ALLERGIC)
    before = snapshot()

    assert bad_fields(post_json(correct_url(old), {"correctedBy": old})) == {"correctedBy"}
    assert bad_fields(post_json(correct_url(old), {"content": ALLERGIC})) == {"content"}
    assert bad_fields(post_json(ADD, {"content": ALLERGIC, "supersedes": [old]})) == {"supersedes"}
    assert snapshot() == before


def test_a_correction_that_would_close_a_cycle_is_refused(add, post_json):
    first = add(ALLERGIC)
    second = correct(post_json, first, NOT_ALLERGIC)["memory"]["id"]
    before = snapshot()

    response = post_json(correct_url(second), {"correctedBy": first})

    assert bad_fields(response) == {"correctedBy"}
    assert "cycle" in response.json()["error"]["message"]
    assert snapshot() == before


@pytest.mark.parametrize("as_of", ["last month", "2026-13-01T00:00:00Z", 20260101, "10000-01-01T00:00:00Z"])
def test_an_unparsable_as_of_is_a_400_naming_it(post_json, api, as_of):
    assert bad_fields(post_json(QUERY, {"query": QUESTION, "asOf": as_of})) == {"asOf"}
    if isinstance(as_of, str):
        assert bad_fields(api.get(MEMORIES, {"asOf": as_of})) == {"asOf"}


def test_as_of_and_include_superseded_together_are_a_400(post_json):
    body = {"query": QUESTION, "asOf": "2026-01-01T00:00:00Z", "includeSuperseded": True}

    assert bad_fields(post_json(QUERY, body)) == {"asOf"}


def test_correct_needs_content_or_corrected_by_and_not_both(add, post_json):
    old = add(ALLERGIC)

    assert bad_fields(post_json(correct_url(old), {})) == {"content"}
    assert bad_fields(post_json(correct_url(old), {"content": NOT_ALLERGIC, "correctedBy": old})) == {"content"}
    assert bad_fields(post_json(correct_url(old), {"correctedBy": "not-a-uuid"})) == {"correctedBy"}


# --- the list, reading by id, expiry --------------------------------------------------------


def test_a_superseded_memory_is_readable_by_id_and_listed_on_request(add, api, post_json):
    old = add(ALLERGIC)
    new = correct(post_json, old, NOT_ALLERGIC)["memory"]["id"]

    assert api.get(detail(old)).status_code == 200
    assert [m["id"] for m in api.get(MEMORIES).json()["data"]["memories"]] == [new]
    listed = api.get(MEMORIES, {"includeSuperseded": "true"}).json()["data"]["memories"]
    assert {m["id"] for m in listed} == {old, new}


def test_an_expired_memory_behaves_as_superseded(add, api, post_json):
    soon = (timezone.now() + timedelta(hours=1)).isoformat()
    kept = add("The guest wifi password is tulip-42 this week.", expiresAt=soon)
    assert query_ids(post_json, "guest wifi password") == [kept]
    Memory.objects.filter(pk=kept).update(valid_from=timezone.now() - timedelta(hours=2))

    Memory.objects.filter(pk=kept).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert query_ids(post_json, "guest wifi password") == []
    assert api.get(detail(kept)).status_code == 200  # kept
    assert query_ids(post_json, "guest wifi password", includeSuperseded=True) == [kept]
    an_hour_ago = (timezone.now() - timedelta(hours=1)).isoformat()
    assert query_ids(post_json, "guest wifi password", asOf=an_hour_ago) == [kept]


def test_patch_sets_and_clears_expires_at(add, api):
    memory = add(ALLERGIC)
    past = (timezone.now() - timedelta(minutes=1)).isoformat()

    assert api.patch(detail(memory), {"expiresAt": past}, format="json").status_code == 200
    assert [m["id"] for m in api.get(MEMORIES).json()["data"]["memories"]] == []
    assert api.patch(detail(memory), {"expiresAt": None}, format="json").status_code == 200
    assert [m["id"] for m in api.get(MEMORIES).json()["data"]["memories"]] == [memory]


def test_a_correction_merged_into_an_older_restatement_hands_its_links_over(add, post_json, django_capture_on_commit_callbacks):
    survivor = add("The meeting is at 4pm.")
    old = add("The meeting is at 3pm.")
    with django_capture_on_commit_callbacks(execute=True):
        merged = correct(post_json, old, "the meeting is at 4pm!")["memory"]["id"]  # consolidation merges it

    assert str(Memory.objects.get(pk=merged).merged_into_id) == survivor
    assert str(Memory.objects.get(pk=old).superseded_by_id) == survivor
    assert Memory.objects.get(pk=survivor).supersedes == [uuid.UUID(old)]
    assert Memory.objects.get(pk=merged).supersedes == []
    assert query_ids(post_json, "When is the meeting?") == [survivor]
