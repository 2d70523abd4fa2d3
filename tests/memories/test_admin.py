"""The staff admin (SPEC §6) through Django's test client as a staff superuser, against the
real database; and ``ensure_superuser``, the env-driven way to create that user."""

import io
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from memories import admin as memory_admin
from memories.selectors.memories import memory_similar
from memories.models import Memory, MemoryAccess, MemoryAssociation, Tier, TierPromotion
from memories import search
from memories.services.catalysts import CANDIDATE_KEY, DISMISSED_KEY
from tests.factories import DIM, make_memories

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:memories_memory_changelist")
#: Measured: session, user, the namespaces (TierCount rows), the page's COUNT, the page's
#: 100 rows, the categories (DISTINCT) — the same at 10 memories or 1,000.
CHANGELIST_MAX_QUERIES = 6


def change_url(memory) -> str:
    return reverse("admin:memories_memory_change", args=[memory.pk])


def shown(response) -> list[str]:
    """The contents on the changelist page, in order."""
    assert response.status_code == 200
    return [memory.content for memory in response.context["cl"].result_list]


def act(client, action: str, *memories, **filters):
    """Run a changelist action on ``memories``; follow the redirect to read the messages."""
    data = {"action": action, "_selected_action": [str(m.pk) for m in memories]}
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return client.post(f"{CHANGELIST}?{query}" if query else CHANGELIST, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def tilted(i: int, j: int, similarity: float) -> np.ndarray:
    """A unit vector whose cosine similarity to axis ``i`` is ``similarity``."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[i] = similarity
    vector[j] = np.sqrt(1 - similarity**2)
    return vector


@pytest.fixture
def catalogue():
    """A small, varied set: one memory per filter value."""
    now = timezone.now()
    mine = make_memories(
        [
            {"content": "Dana is allergic to peanuts.", "tags": ["dana", "health"], "category": "health"},
            {
                "content": "The staging server runs Debian 12.",
                "tier": Tier.STABLE,
                "category": "ops",
                "tags": ["infra"],
            },
            {"content": "A breakthrough in the cache design.", "is_catalyst": True, "tier": Tier.THREAD},
            {
                "content": "Standup moved to 9:30.",
                "metadata": {CANDIDATE_KEY: {"reasons": ["rapid_access"], "detectedAt": now.isoformat()}},
            },
            {"content": "An old, deleted note.", "deleted_at": now},
        ],
        with_embeddings=False,
    )
    theirs = make_memories([{"content": "Another tenant's memory."}], namespace="tenant-b", with_embeddings=False)
    return dict(zip(["dana", "staging", "breakthrough", "standup", "old", "tenant"], mine + theirs))


# --- the changelist -------------------------------------------------------------------------


@pytest.mark.slow
def test_changelist_of_a_thousand_memories_renders_in_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    rng = np.random.default_rng(4)
    make_memories(
        [
            {
                "content": f"memory number {i} " + "long text " * 50,
                "vector": rng.standard_normal(DIM),
                "category": f"cat{i % 7}",
                "tags": [f"t{i % 5}"],
                "tier": Tier.values[i % 4],
                "metadata": {CANDIDATE_KEY: {"reasons": ["content_marker"]}} if i % 10 == 0 else {},
            }
            for i in range(1000)
        ],
        namespace="bulk",
    )

    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES) as captured:
        response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 100
    assert response.context["cl"].result_count == 1000
    sql = " ".join(query["sql"] for query in captured.captured_queries)
    assert "memories_memoryembedding" not in sql
    assert "search_vector" not in sql


def test_changelist_hides_deleted_memories_by_default(admin_client, catalogue):
    contents = shown(admin_client.get(CHANGELIST))

    assert "An old, deleted note." not in contents
    assert len(contents) == 5


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=deleted", {"An old, deleted note."}),
        ("status=all", None),  # every memory
        ("namespace=tenant-b", {"Another tenant's memory."}),
        ("tier__exact=stable", {"The staging server runs Debian 12."}),
        ("category=ops", {"The staging server runs Debian 12."}),
        ("is_catalyst__exact=1", {"A breakthrough in the cache design."}),
        ("candidate=yes", {"Standup moved to 9:30."}),
    ],
    ids=["deleted", "all", "namespace", "tier", "category", "catalyst", "candidate-catalyst"],
)
def test_changelist_filter(admin_client, catalogue, query, expected):
    contents = set(shown(admin_client.get(f"{CHANGELIST}?{query}")))

    assert contents == (expected if expected is not None else {m.content for m in catalogue.values()})


def test_merged_filter_shows_merged_memories(admin_client, catalogue):
    survivor, merged = make_memories([{"content": "kept"}, {"content": "kept!"}], with_embeddings=False)
    Memory.objects.filter(pk=merged.pk).update(deleted_at=timezone.now(), merged_into=survivor.pk)

    assert shown(admin_client.get(f"{CHANGELIST}?status=merged")) == ["kept!"]


def namespace_choices(response) -> list[str]:
    namespace_filter = next(spec for spec in response.context["cl"].filter_specs if spec.title == "namespace")
    return [value for value, _ in namespace_filter.lookup_choices]


def test_namespace_filter_lists_the_namespaces(admin_client, catalogue):
    assert namespace_choices(admin_client.get(CHANGELIST)) == ["default", "tenant-b"]


def test_namespace_filter_lists_only_the_largest_namespaces_but_filters_by_any(admin_client, monkeypatch):
    monkeypatch.setattr(memory_admin, "NAMESPACE_CHOICES", 2)
    make_memories([{"content": f"big {i}"} for i in range(3)], namespace="big", with_embeddings=False)
    make_memories([{"content": f"mid {i}"} for i in range(2)], namespace="mid", with_embeddings=False)
    make_memories([{"content": "small"}], namespace="small", with_embeddings=False)

    assert namespace_choices(admin_client.get(CHANGELIST)) == ["big", "mid"]
    response = admin_client.get(f"{CHANGELIST}?namespace=small")
    assert shown(response) == ["small"]
    assert namespace_choices(response) == ["big", "mid", "small"]


@pytest.mark.parametrize(
    "term, expected",
    [
        ("peanuts", {"Dana is allergic to peanuts."}),
        ("debian staging", {"The staging server runs Debian 12."}),
        ("servers", {"The staging server runs Debian 12."}),  # English stemming
        ("infra", {"The staging server runs Debian 12."}),  # an exact tag
        ("nothing-like-this", set()),
    ],
)
def test_search_finds_memories_by_word_or_tag(admin_client, catalogue, term, expected):
    assert set(shown(admin_client.get(CHANGELIST, {"q": term}))) == expected


def test_search_finds_a_memory_by_its_id(admin_client, catalogue):
    dana = catalogue["dana"]

    assert shown(admin_client.get(CHANGELIST, {"q": str(dana.pk)})) == ["Dana is allergic to peanuts."]


def test_non_staff_user_is_sent_to_the_login_page(client):
    user = get_user_model().objects.create_user(username="visitor", password="pw-visitor-1")
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_memories_cannot_be_added_or_hard_deleted_here(admin_client, catalogue):
    dana = catalogue["dana"]

    assert admin_client.get(reverse("admin:memories_memory_add")).status_code == 403
    assert admin_client.get(reverse("admin:memories_memory_delete", args=[dana.pk])).status_code == 403
    assert Memory.objects.filter(pk=dana.pk).exists()


# --- actions ----------------------------------------------------------------------------------


def test_move_to_stable_moves_and_writes_the_audit_rows(admin_client, catalogue):
    dana, staging = catalogue["dana"], catalogue["staging"]

    response = act(admin_client, "move_to_stable", dana, staging)

    dana.refresh_from_db()
    assert dana.tier == Tier.STABLE
    audit = TierPromotion.objects.get(memory=dana)
    assert (audit.from_tier, audit.to_tier, audit.reason) == (Tier.ACTIVE, Tier.STABLE, "manual")
    assert not TierPromotion.objects.filter(memory=staging).exists()  # it was there already
    assert messages_of(response) == ["1 moved to stable; 1 already there or deleted (unchanged)."]


@pytest.mark.parametrize("tier", [Tier.ACTIVE, Tier.THREAD, Tier.NETWORK])
def test_each_tier_has_its_move_action(admin_client, catalogue, tier):
    staging = catalogue["staging"]

    act(admin_client, f"move_to_{tier}", staging)

    staging.refresh_from_db()
    assert staging.tier == tier
    assert TierPromotion.objects.filter(memory=staging, to_tier=tier).count() == 1


def test_mark_and_unmark_catalyst(admin_client, catalogue):
    dana, breakthrough = catalogue["dana"], catalogue["breakthrough"]

    marked = act(admin_client, "mark_catalyst", dana)
    unmarked = act(admin_client, "unmark_catalyst", breakthrough)

    assert Memory.objects.get(pk=dana.pk).is_catalyst is True
    assert Memory.objects.get(pk=breakthrough.pk).is_catalyst is False
    assert messages_of(marked) == ["1 marked as catalysts."]
    assert messages_of(unmarked) == ["1 no longer catalysts."]


def test_confirm_candidate_makes_a_catalyst_and_clears_the_note(admin_client, catalogue):
    standup = catalogue["standup"]

    act(admin_client, "confirm_candidate", standup)

    standup.refresh_from_db()
    assert standup.is_catalyst is True
    assert CANDIDATE_KEY not in standup.metadata


def test_dismiss_candidate_keeps_the_flag_and_records_the_dismissal(admin_client, catalogue):
    standup = catalogue["standup"]

    act(admin_client, "dismiss_candidate", standup)

    standup.refresh_from_db()
    assert standup.is_catalyst is False
    assert CANDIDATE_KEY not in standup.metadata
    assert DISMISSED_KEY in standup.metadata


def test_soft_delete_hides_and_restore_brings_back(admin_client, catalogue):
    dana = catalogue["dana"]

    deleted = act(admin_client, "soft_delete", dana)
    assert Memory.objects.get(pk=dana.pk).deleted_at is not None
    assert "Dana is allergic to peanuts." not in shown(admin_client.get(CHANGELIST))
    assert messages_of(deleted) == ["1 deleted (soft: restore brings them back)."]

    restored = act(admin_client, "restore", dana, status="deleted")
    assert Memory.objects.get(pk=dana.pk).deleted_at is None
    assert messages_of(restored) == ["1 restored."]


def test_restore_skips_a_memory_whose_content_is_live_again_and_says_so(admin_client, catalogue):
    old = catalogue["old"]
    again = make_memories([{"content": "An old, deleted note."}], with_embeddings=False)[0]
    other = make_memories([{"content": "restorable", "deleted_at": timezone.now()}], with_embeddings=False)[0]

    response = act(admin_client, "restore", old, other, status="deleted")

    assert Memory.objects.get(pk=old.pk).deleted_at is not None
    assert Memory.objects.get(pk=other.pk).deleted_at is None
    assert messages_of(response) == [
        "1 restored.",
        f"1 not restored: a live memory of their namespace has the same content now ({old.pk}).",
    ]
    assert Memory.objects.filter(pk=again.pk, deleted_at__isnull=True).exists()


def test_restore_of_two_deleted_copies_brings_back_only_the_latest(admin_client):
    earlier, later = make_memories(
        [
            {"content": "twice deleted", "deleted_at": timezone.now() - timedelta(days=2)},
            {"content": "twice deleted", "deleted_at": timezone.now() - timedelta(days=1)},
        ],
        with_embeddings=False,
    )

    act(admin_client, "restore", earlier, later, status="deleted")

    assert Memory.objects.get(pk=later.pk).deleted_at is None
    assert Memory.objects.get(pk=earlier.pk).deleted_at is not None


def test_merge_folds_the_newer_into_the_older(admin_client, fake_embedder):
    now = timezone.now()
    older, newer = make_memories(
        [
            {
                "content": "The favourite colour is blue.",
                "vector": tilted(0, 1, 1.0),
                "created_at": now - timedelta(days=1),
            },
            {"content": "The favorite color is blue.", "vector": tilted(0, 1, 0.97), "created_at": now, "tags": ["c"]},
        ]
    )

    act(admin_client, "merge_pair", older, newer)

    newer.refresh_from_db()
    older.refresh_from_db()
    assert newer.merged_into_id == older.pk
    assert newer.deleted_at is not None
    assert older.tags == ["c"]
    assert older.metadata["semanticVariants"][0]["content"] == "The favorite color is blue."


def test_merge_needs_exactly_two(admin_client, catalogue):
    response = act(admin_client, "merge_pair", catalogue["dana"])

    assert messages_of(response) == ["Select exactly two live memories of one namespace to merge."]


# --- the change page ---------------------------------------------------------------------------


@pytest.fixture
def neighbourhood(fake_embedder):
    """A memory and neighbours at known similarities; a deleted one, another namespace's
    and a far one must not be listed as similar."""
    centre, *others = make_memories(
        [
            {"content": "centre", "vector": tilted(0, 1, 1.0)},
            {"content": "close", "vector": tilted(0, 2, 0.9)},
            {"content": "closer", "vector": tilted(0, 3, 0.95)},
            {"content": "further", "vector": tilted(0, 4, 0.6)},
            {"content": "deleted twin", "vector": tilted(0, 5, 0.99), "deleted_at": timezone.now()},
        ]
        + [{"content": f"far {i}", "vector": tilted(10 + i, 60, 0.9)} for i in range(12)]
    )
    make_memories([{"content": "other tenant twin", "vector": tilted(0, 6, 0.99)}], namespace="tenant-b")
    return centre


def test_change_page_lists_similar_memories_nearest_first(admin_client, neighbourhood):
    response = admin_client.get(change_url(neighbourhood))

    assert response.status_code == 200
    html = response.content.decode()
    section = html[html.lower().index("similar memories") :]
    positions = [section.index(f">{name}</a>") for name in ("closer", "close", "further")]
    assert positions == sorted(positions)
    assert "0.950" in section and "0.900" in section
    assert "deleted twin" not in html
    assert "other tenant twin" not in html


def test_similar_memories_are_the_ten_nearest_live_ones_of_the_namespace(neighbourhood):
    similar = memory_similar(memory_id=neighbourhood.pk)

    assert [s.preview for s in similar[:3]] == ["closer", "close", "further"]
    assert len(similar) == 10
    assert neighbourhood.pk not in {s.memory_id for s in similar}
    assert similar[0].similarity == pytest.approx(0.95, abs=1e-4)


def test_similar_memories_are_read_through_the_hnsw_index(neighbourhood):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memories_memoryembedding")
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        memory_similar(memory_id=neighbourhood.pk)
    statement = next(q["sql"] for q in captured.captured_queries if "ORDER BY" in q["sql"] and "<=>" in q["sql"])
    with transaction.atomic(), connection.cursor() as cursor:
        search.configure_hnsw(10)
        # The table is tiny, so the planner would rightly sort it; ask whether the index can serve the order.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {statement}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "embedding_hnsw_cosine" in plan


def test_change_page_shows_the_promotion_history(admin_client, catalogue):
    dana = catalogue["dana"]
    act(admin_client, "move_to_thread", dana)
    act(admin_client, "move_to_stable", dana)

    html = admin_client.get(change_url(dana)).content.decode()

    history = html[html.lower().index("tier changes") :]
    assert history.index("<td>thread</td><td>stable</td><td>manual</td>") < history.index(
        "<td>active</td><td>thread</td><td>manual</td>"
    )


def test_change_page_shows_associations_with_the_other_memory(admin_client, catalogue):
    dana, staging = catalogue["dana"], catalogue["staging"]
    first, second = sorted([dana, staging], key=lambda m: m.pk)
    MemoryAssociation.objects.create(
        namespace="default", memory_a=first, memory_b=second, co_occurrence_count=9, strength=0.5
    )

    html = admin_client.get(change_url(dana)).content.decode()

    associations = html[html.lower().index("associations (co-occurrence)") :]
    assert "The staging server runs Debian 12." in associations
    assert "<td>0.50</td><td>9</td>" in associations


def test_change_page_of_a_memory_without_embedding_says_so(admin_client, catalogue):
    html = admin_client.get(change_url(catalogue["dana"])).content.decode()

    assert "Embedding:" in html
    assert ">none<" in html


def test_change_form_saves_curated_fields_through_the_service(admin_client, catalogue):
    dana = catalogue["dana"]

    response = admin_client.post(
        change_url(dana),
        {
            "category": "allergies",
            "tags": "dana,food",
            "source": "",
            "metadata": '{"checked": true}',
            "is_catalyst": "on",
        },
    )

    assert response.status_code == 302
    dana.refresh_from_db()
    assert (dana.category, dana.tags, dana.metadata, dana.is_catalyst) == (
        "allergies",
        ["dana", "food"],
        {"checked": True},
        True,
    )
    assert dana.content == "Dana is allergic to peanuts."


def test_change_form_rejects_metadata_that_is_not_an_object(admin_client, catalogue):
    dana = catalogue["dana"]

    response = admin_client.post(change_url(dana), {"category": "x", "tags": "", "source": "", "metadata": "[1, 2]"})

    assert response.status_code == 200
    assert "Metadata must be a JSON object." in response.content.decode()
    assert Memory.objects.get(pk=dana.pk).category == "health"


@pytest.mark.parametrize(
    "metadata",
    ['{"n": NaN}', '{"k": "a\\u0000b"}', '{"\\ud800": 1}', '{"n": 1e400}', "[" * 5000 + "]" * 5000, '{"b": "' + "x" * 70_000 + '"}'],
    ids=["NaN", "NUL", "lone surrogate", "1e400", "too deep to parse", "over 64 KB"],
)
def test_change_form_refuses_metadata_the_database_cannot_store(admin_client, catalogue, metadata):
    dana = catalogue["dana"]

    response = admin_client.post(change_url(dana), {"category": "x", "tags": "", "source": "", "metadata": metadata})

    assert response.status_code == 200  # the form again, with the error
    assert "errorlist" in response.content.decode()
    assert Memory.objects.get(pk=dana.pk).category == "health"


# --- read-only logs ----------------------------------------------------------------------------


@pytest.fixture
def logs(catalogue):
    dana, staging = catalogue["dana"], catalogue["staging"]
    first, second = sorted([dana, staging], key=lambda m: m.pk)
    MemoryAssociation.objects.create(namespace="default", memory_a=first, memory_b=second, co_occurrence_count=1)
    TierPromotion.objects.create(
        memory=dana, from_tier="active", to_tier="thread", reason="manual", access_count_at_promotion=0
    )
    MemoryAccess.objects.create(memory=dana, conversation_id="conv-1")
    return catalogue


@pytest.mark.parametrize("model", ["tierpromotion", "memoryassociation", "memoryaccess"])
def test_read_only_log_lists_with_memory_previews(admin_client, logs, model):
    response = admin_client.get(reverse(f"admin:memories_{model}_changelist"))

    assert response.status_code == 200
    assert "Dana is allergic to peanuts." in response.content.decode()


@pytest.mark.parametrize("model", ["tierpromotion", "memoryassociation", "memoryaccess"])
def test_read_only_log_cannot_be_added_to(admin_client, logs, model):
    assert admin_client.get(reverse(f"admin:memories_{model}_add")).status_code == 403


def test_read_only_log_list_costs_a_constant_number_of_queries(admin_client, logs, django_assert_max_num_queries):
    dana = logs["dana"]
    MemoryAccess.objects.bulk_create([MemoryAccess(memory=dana, conversation_id=f"c{i}") for i in range(300)])

    with django_assert_max_num_queries(5):
        response = admin_client.get(reverse("admin:memories_memoryaccess_changelist"))

    assert response.status_code == 200


def test_estimated_count_falls_back_to_the_exact_count_on_a_small_table(logs):
    paginator = memory_admin.EstimatedCountPaginator(MemoryAccess.objects.order_by("-accessed_at"), 100)

    assert paginator.count == 1  # small: the exact count


# --- ensure_superuser --------------------------------------------------------------------------------


def run_ensure_superuser(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("ensure_superuser", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def admin_env(settings):
    settings.ANIMA_ADMIN_USERNAME = "root"
    settings.ANIMA_ADMIN_PASSWORD = "s3cret-Passw0rd"
    settings.ANIMA_ADMIN_EMAIL = "root@example.org"
    return settings


def test_ensure_superuser_creates_a_staff_superuser_who_can_log_in(admin_env, client):
    out, _ = run_ensure_superuser()

    user = get_user_model().objects.get(username="root")
    assert (user.is_staff, user.is_superuser, user.is_active, user.email) == (True, True, True, "root@example.org")
    assert client.login(username="root", password="s3cret-Passw0rd")
    assert client.get(CHANGELIST).status_code == 200
    assert "s3cret-Passw0rd" not in out
    assert "created" in out


def test_ensure_superuser_is_idempotent_and_keeps_the_password(admin_env):
    run_ensure_superuser()
    user = get_user_model().objects.get(username="root")
    user.set_password("changed-in-the-admin")
    user.save()
    admin_env.ANIMA_ADMIN_PASSWORD = "another-one"

    out, _ = run_ensure_superuser()

    assert get_user_model().objects.filter(username="root").count() == 1
    assert get_user_model().objects.get(username="root").check_password("changed-in-the-admin")
    assert "left unchanged" in out
    assert "another-one" not in out


def test_ensure_superuser_update_password_sets_it_from_the_environment(admin_env):
    run_ensure_superuser()
    admin_env.ANIMA_ADMIN_PASSWORD = "rotated-Passw0rd"

    out, _ = run_ensure_superuser("--update-password")

    assert get_user_model().objects.get(username="root").check_password("rotated-Passw0rd")
    assert "rotated-Passw0rd" not in out


def test_ensure_superuser_does_nothing_without_a_username(settings):
    settings.ANIMA_ADMIN_USERNAME = None
    settings.ANIMA_ADMIN_PASSWORD = "unused"

    out, _ = run_ensure_superuser()

    assert get_user_model().objects.count() == 0
    assert "not set" in out


def test_ensure_superuser_refuses_to_create_without_a_password(admin_env):
    admin_env.ANIMA_ADMIN_PASSWORD = None

    with pytest.raises(CommandError, match="ANIMA_ADMIN_PASSWORD"):
        run_ensure_superuser()

    assert get_user_model().objects.count() == 0


def test_ensure_superuser_warns_when_the_user_exists_without_staff_rights(admin_env):
    get_user_model().objects.create_user(username="root", password="x")

    _, err = run_ensure_superuser()

    assert "not an active staff superuser" in err
    assert get_user_model().objects.get(username="root").is_staff is False
