"""Forgetting for real: purge of one memory, of a namespace, and the retention job —
against the real PostgreSQL and the real bundled model. "Gone" is checked the hard way:
every row of every table in the public schema is cast to text and searched."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django_q.models import OrmQ, Task
from django_q.tasks import async_task
from psycopg import sql
from rest_framework.test import APIClient

from keys.models import ApiKey
from memories.models import (
    BackgroundWork,
    Memory,
    MemoryAccess,
    MemoryAssociation,
    MemoryEmbedding,
    TierCount,
    TierPromotion,
)
from memories.services.forgetting import memories_purge_expired
from reflections.models import Handshake, MetaReflection
from tests.api_paths import ADD, CONVERSATION_END, HANDSHAKE, NAMESPACE_PURGE, QUERY, UPDATE_TIER
from tests.api_paths import REFLECTION_END as REFLECT
from tests.factories import make_memories
from tests.responses import bad_fields

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)

TARGET = "Dana is allergic to peanuts."
RESTATEMENT = "dana is allergic to peanuts!"
CORRECTION = "Dana is not allergic to peanuts."
OTHERS = [
    "The staging server runs Debian 12.",
    "Dana's birthday is in May.",
    "The office wifi password is on the fridge.",
]
TENANT_TABLES = {
    "memories_memory",
    "memories_memoryembedding",
    "memories_memoryassociation",
    "memories_tiercount",
    "meta_metareflection",
    "meta_conversationreflection",
    "meta_handshake",
    "meta_apikey",
}


def detail(memory_id) -> str:
    return f"/api/v1/memories/{memory_id}/"


def purge_url(memory_id) -> str:
    return f"{detail(memory_id)}?purge=true"


def _public_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def tables_holding(needle: str) -> dict[str, int]:
    """{table: rows whose text form contains ``needle``} over every table of the public schema."""
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = {}
    with connection.cursor() as cursor:
        for table in _public_tables():
            cursor.execute(
                sql.SQL("SELECT count(*) FROM {} t WHERE t::text LIKE %s").format(sql.Identifier(table)), [pattern]
            )
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found


def tables_with_namespace(namespace: str) -> tuple[dict[str, int], list[str]]:
    """({table: rows holding ``namespace``}, every public table with a ``namespace`` column)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'namespace' ORDER BY 1"
        )
        tables = [row[0] for row in cursor.fetchall()]
        found = {}
        for table in tables:
            statement = sql.SQL("SELECT count(*) FROM {} WHERE namespace = %s").format(sql.Identifier(table))
            cursor.execute(statement, [namespace])
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found, tables


@pytest.fixture
def rich(add, api, post_json, django_capture_on_commit_callbacks):
    """A memory with everything that can hang on it, and copies of it around the database."""
    target = add(TARGET, category="health", tags=["dana"])
    others = [add(text) for text in OTHERS]
    restatement = add(RESTATEMENT)  # consolidation merges it into the target
    correction = add(CORRECTION)  # consolidation links it: a correction is never merged
    for conversation in ("conv-1", "conv-2"):
        with django_capture_on_commit_callbacks(execute=True):
            body = {"query": "Dana peanuts", "similarityThreshold": 0.0, "limit": 10, "conversationId": conversation}
            response = post_json(QUERY, body)
        assert response.status_code == 200
    # A query whose background work is still pending (its drain never ran).
    body = {"query": "Dana peanuts", "similarityThreshold": 0.0, "limit": 10, "conversationId": "conv-3"}
    assert post_json(QUERY, body).status_code == 200
    assert post_json(UPDATE_TIER, {"memoryId": target, "tier": "stable"}).status_code == 200
    handshake = api.get(HANDSHAKE)
    assert handshake.status_code in (200, 201)
    reflection = post_json(CONVERSATION_END, {"conversationId": "conv-2", "sessionMetrics": {"memories_loaded": 5}})
    assert reflection.status_code == 201, reflection.json()

    # The situation is what the test means it to be.
    assert Memory.objects.get(pk=restatement).merged_into_id == uuid.UUID(target)
    assert Memory.objects.get(pk=target).metadata["semanticVariants"][0]["content"] == RESTATEMENT
    assert [e["id"] for e in Memory.objects.get(pk=correction).metadata["nearDuplicates"]] == [target]
    assert MemoryEmbedding.objects.filter(memory_id=target).exists()
    assert MemoryAccess.objects.filter(memory_id=target).count() >= 2
    assert MemoryAssociation.objects.filter(Q(memory_a_id=target) | Q(memory_b_id=target)).count() >= 3
    assert TierPromotion.objects.filter(memory_id=target).exists()
    assert Handshake.objects.filter(top_memories__contains=[{"id": target}]).exists()
    assert MetaReflection.objects.filter(metrics__contains={"hubs": [{"memoryId": target}]}).exists()
    assert BackgroundWork.objects.filter(memory_ids__contains=[target]).count() == 3  # the query's three kinds
    return {"target": target, "restatement": restatement, "correction": correction, "others": others}


def test_purge_leaves_neither_id_nor_text_in_any_table(rich, api):
    before = {needle: tables_holding(needle) for needle in (rich["target"], TARGET)}
    assert "memories_memory" in before[rich["target"]] and "memories_memory" in before[TARGET]

    response = api.delete(purge_url(rich["target"]))

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["purged"] is True
    assert response.json()["data"]["counts"]["memories"] == 2  # the memory and the one merged into it
    for needle in (rich["target"], rich["restatement"], TARGET, RESTATEMENT):
        assert tables_holding(needle) == {}, needle


def test_purge_takes_the_memory_out_of_pending_background_work(rich, api):
    api.delete(purge_url(rich["target"]))

    assert not BackgroundWork.objects.filter(memory_ids__overlap=[rich["target"], rich["restatement"]]).exists()
    left = BackgroundWork.objects.get(kind="cooccurrence")  # the other hits of that query still pair up
    assert sorted(map(str, left.memory_ids)) == sorted({rich["correction"], *rich["others"]} & set(map(str, left.memory_ids)))
    assert len(left.memory_ids) >= 2


def test_purge_forgets_the_task_records_that_name_the_memory(rich, api):
    # A task of a version before background work rows named its memory in its arguments.
    async_task("memories.tasks.consolidate_memory", rich["target"])

    # django_q pickles task arguments; a text scan cannot see inside, so read them back.
    def naming(memory_id):
        return [t.func for t in Task.objects.all() if memory_id in repr(t.args) or memory_id in repr(t.result)]

    assert naming(rich["target"])

    api.delete(purge_url(rich["target"]))

    assert naming(rich["target"]) == [] and naming(rich["restatement"]) == []
    assert [e for e in OrmQ.objects.all() if rich["target"] in repr(e.task)] == []


def test_purge_keeps_every_other_memory_and_scrubs_their_copies(rich, api):
    api.delete(purge_url(rich["target"]))

    live = set(map(str, Memory.objects.values_list("pk", flat=True)))
    assert live == {rich["correction"], *rich["others"]}
    assert Memory.objects.get(pk=rich["correction"]).metadata["nearDuplicates"] == []
    reflection = MetaReflection.objects.get()
    assert rich["target"] not in [hub["memoryId"] for hub in reflection.metrics["hubs"]]
    assert not Handshake.objects.exists()  # it quoted the memory
    assert MemoryAssociation.objects.exists()  # the others' associations stay


def test_a_purged_memory_is_gone_from_retrieve_restore_and_purge(rich, api):
    api.delete(purge_url(rich["target"]))

    assert api.get(detail(rich["target"])).status_code == 404
    assert api.post(f"{detail(rich['target'])}restore/").status_code == 404
    assert api.get(detail(rich["restatement"])).status_code == 404
    again = api.delete(purge_url(rich["target"]))
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "MEMORY_NOT_FOUND"


def test_purge_with_chain_removes_every_correction_and_leaves_no_copy(add, api, post_json):
    first = add("The team meets on Monday at 9.")
    second = post_json(f"{detail(first)}correct", {"content": "The team meets on Tuesday at 9."})
    second = second.json()["data"]["memory"]["id"]
    third = post_json(f"{detail(second)}correct", {"content": "The team meets on Tuesday at 10."})
    third = third.json()["data"]["memory"]["id"]
    kept = add("The staging server runs Debian 12.")
    texts = ["Monday at 9", "Tuesday at 9", "Tuesday at 10"]
    assert all(tables_holding(text) for text in texts)

    response = api.delete(f"{purge_url(second)}&chain=true")  # from the middle: both ways

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["counts"]["memories"] == 3
    for needle in [first, second, third, *texts]:
        assert tables_holding(needle) == {}, needle
    assert list(map(str, Memory.objects.values_list("pk", flat=True))) == [kept]


def test_purge_of_one_link_leaves_no_copy_of_its_id_in_the_chain(add, api, post_json):
    first = add("The team meets on Monday at 9.")
    second = post_json(f"{detail(first)}correct", {"content": "The team meets on Tuesday at 9."})
    second = second.json()["data"]["memory"]["id"]

    assert api.delete(purge_url(first)).status_code == 200

    assert tables_holding(first) == {}
    assert Memory.objects.get(pk=second).supersedes == []


def test_chain_without_purge_is_a_400(add, api):
    memory = add("The team meets on Monday at 9.")

    assert bad_fields(api.delete(f"{detail(memory)}?chain=true")) == {"chain"}
    assert Memory.objects.get(pk=memory).deleted_at is None


def test_purge_of_an_unknown_id_is_404(api, add):
    kept = add("The staging server runs Debian 12.")

    response = api.delete(purge_url(uuid.uuid4()))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MEMORY_NOT_FOUND"
    assert list(map(str, Memory.objects.values_list("pk", flat=True))) == [kept]


def test_purge_of_another_namespaces_memory_is_404(api):
    [other] = make_memories([{"content": "theirs", "vector": [1.0] * 384}], namespace="tenant-b")

    assert api.delete(purge_url(other.pk)).status_code == 404
    assert Memory.objects.filter(pk=other.pk).exists()


def test_purge_needs_a_write_key(api_key_for):
    [memory] = make_memories([{"content": "mine", "vector": [1.0] * 384}])
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('read')}")

    assert reader.delete(purge_url(memory.pk)).status_code == 403
    assert Memory.objects.filter(pk=memory.pk).exists()


def test_a_soft_delete_without_purge_keeps_the_row(api):
    [memory] = make_memories([{"content": "mine", "vector": [1.0] * 384}])

    assert api.delete(detail(memory.pk)).status_code == 200

    assert Memory.objects.filter(pk=memory.pk, deleted_at__isnull=False).exists()


def test_purge_flag_must_be_true_or_false(api):
    [memory] = make_memories([{"content": "mine", "vector": [1.0] * 384}])

    assert bad_fields(api.delete(f"{detail(memory.pk)}?purge=yes")) == {"purge"}
    assert Memory.objects.filter(pk=memory.pk, deleted_at__isnull=True).exists()


# --- namespace purge ----------------------------------------------------------------------


@pytest.fixture
def tenant(api_key_for, add, django_capture_on_commit_callbacks):
    """Namespace ``tenant-a`` with memories, associations, a reflection, a handshake and a key;
    ``default`` with one memory of its own."""
    key = api_key_for("admin", namespace="tenant-a")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    for text in (TARGET, RESTATEMENT, CORRECTION, *OTHERS):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(ADD, {"content": text}, format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        client.post(QUERY, {"query": "Dana", "similarityThreshold": 0.0, "conversationId": "c"}, format="json")
    client.post(CONVERSATION_END, {"conversationId": "c"}, format="json")
    client.post(REFLECT, {"conversationId": "c", "contextQuality": 7, "continuityScore": 8}, format="json")
    client.get(HANDSHAKE)
    kept = add("The default namespace keeps this.")
    found, _ = tables_with_namespace("tenant-a")
    assert TENANT_TABLES <= set(found)
    return client, kept


def test_namespace_purge_leaves_no_row_of_the_namespace(tenant):
    client, kept = tenant
    ids = [str(pk) for pk in Memory.objects.filter(namespace="tenant-a").values_list("pk", flat=True)]

    response = client.post(NAMESPACE_PURGE, {"confirm": "tenant-a"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["namespace"] == "tenant-a"
    found, tables = tables_with_namespace("tenant-a")
    assert found == {} and len(tables) >= 8
    for memory_id in ids:
        assert tables_holding(memory_id) == {}
    assert tables_holding(TARGET) == {}
    assert list(map(str, Memory.objects.values_list("pk", flat=True))) == [kept]
    assert TierCount.objects.filter(namespace="default").exists()


def test_namespace_purge_revokes_the_namespaces_keys(tenant):
    client, _ = tenant

    client.post(NAMESPACE_PURGE, {"confirm": "tenant-a"}, format="json")

    assert client.get("/api/v1/memories/").status_code == 401
    assert not ApiKey.objects.filter(namespace="tenant-a").exists()


def test_default_admin_key_purges_another_namespace_by_header(tenant, api):
    _, kept = tenant

    response = api.post(NAMESPACE_PURGE, {"confirm": "tenant-a"}, format="json", HTTP_X_ANIMA_NAMESPACE="tenant-a")

    assert response.status_code == 200, response.json()
    assert tables_with_namespace("tenant-a")[0] == {}
    assert list(map(str, Memory.objects.values_list("pk", flat=True))) == [kept]
    assert api.get("/api/v1/memories/").status_code == 200  # the default key is not of tenant-a


def test_namespace_purge_without_confirm_is_400_and_removes_nothing(tenant):
    client, _ = tenant
    before = tables_with_namespace("tenant-a")[0]

    assert bad_fields(client.post(NAMESPACE_PURGE, {}, format="json")) == {"confirm"}
    assert bad_fields(client.post(NAMESPACE_PURGE, {"confirm": "default"}, format="json")) == {"confirm"}

    assert tables_with_namespace("tenant-a")[0] == before


def test_namespace_purge_needs_an_admin_key(api_key_for):
    make_memories([{"content": "mine", "vector": [1.0] * 384}])
    writer = APIClient()
    writer.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('write')}")

    response = writer.post(NAMESPACE_PURGE, {"confirm": "default"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert Memory.objects.count() == 1


# --- retention ----------------------------------------------------------------------------


@pytest.fixture
def deletions():
    """Memories deleted 40 and 20 days before ``now``, a live one, one merged 40 days ago."""
    now = timezone.now()
    old, recent, live, survivor, merged = make_memories(
        [
            {"content": "deleted long ago", "vector": [1.0] + [0.0] * 383, "deleted_at": now - 40 * DAY},
            {"content": "deleted lately", "vector": [0.0, 1.0] + [0.0] * 382, "deleted_at": now - 20 * DAY},
            {"content": "live", "vector": [0.0, 0.0, 1.0] + [0.0] * 381},
            {"content": "survivor", "vector": [0.0] * 3 + [1.0] + [0.0] * 380},
            {"content": "merged", "vector": [0.0] * 4 + [1.0] + [0.0] * 379, "deleted_at": now - 40 * DAY},
        ]
    )
    Memory.objects.filter(pk=merged.pk).update(merged_into=survivor)
    return now, {"old": old.pk, "recent": recent.pk, "live": live.pk, "survivor": survivor.pk, "merged": merged.pk}


def test_retention_purges_only_rows_deleted_longer_ago(deletions, settings):
    settings.ANIMA_SOFT_DELETE_RETENTION_DAYS = 30
    now, ids = deletions

    assert memories_purge_expired(now=now) == 1

    remaining = set(Memory.objects.values_list("pk", flat=True))
    assert remaining == {ids["recent"], ids["live"], ids["survivor"], ids["merged"]}
    assert not MemoryEmbedding.objects.filter(memory_id=ids["old"]).exists()


def test_retention_is_counted_from_now(deletions, settings):
    settings.ANIMA_SOFT_DELETE_RETENTION_DAYS = 30
    now, ids = deletions

    assert memories_purge_expired(now=now + 11 * DAY) == 2  # "deleted lately" is 31 days old then

    assert set(Memory.objects.values_list("pk", flat=True)) == {ids["live"], ids["survivor"], ids["merged"]}


def test_retention_zero_keeps_deleted_rows_forever(deletions, settings):
    settings.ANIMA_SOFT_DELETE_RETENTION_DAYS = 0
    now, ids = deletions

    assert memories_purge_expired(now=now + 3650 * DAY) == 0

    assert set(Memory.objects.values_list("pk", flat=True)) == set(ids.values())



def test_purge_removes_staff_edit_log_entries(rich, api, admin_client):
    admin_client.post(
        f"/admin/memories/memory/{rich['target']}/change/",
        {"category": "x", "tags": "dana", "source": "", "metadata": "{}", "is_catalyst": "", "pinned": ""},
    )
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.filter(object_id=str(rich["target"])).exists()

    api.delete(purge_url(rich["target"]))

    assert tables_holding(rich["target"]) == {} and tables_holding(TARGET) == {}
