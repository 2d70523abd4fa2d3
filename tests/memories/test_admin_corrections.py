"""The admin screens for facts that change, through Django's test client as a staff
superuser against the real database: the correction chain and the suggested correction on
the change page, the validity filter and column, and the confirm / dismiss actions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from memories import admin as memory_admin
from memories.models import Memory
from memories.services.adding import BatchItem
from memories.services.correcting import memory_correct
from memories.services.supersession import CORRECTION_CANDIDATE, CORRECTION_DISMISSED, memories_supersede
from tests.factories import make_memories
from tests.memories.test_admin import CHANGELIST, act, change_url, messages_of, shown

pytestmark = pytest.mark.django_db


def section(html: str, title: str) -> str:
    """The change page from the field labelled ``title`` on."""
    return html[html.index(title) :]


def suggest(newer: Memory, older: Memory, similarity: float = 0.96) -> None:
    """What consolidation writes on ``newer`` when it may correct ``older``."""
    metadata = {**newer.metadata, CORRECTION_CANDIDATE: {"corrects": str(older.pk), "similarity": similarity}}
    Memory.objects.filter(pk=newer.pk).update(metadata=metadata)
    newer.metadata = metadata


def supersede(newer: Memory, *older: Memory) -> None:
    memories_supersede(namespace=newer.namespace, successor_id=newer.pk, predecessor_ids=[m.pk for m in older])


@pytest.fixture
def chain(fake_embedder):
    """A → B → C: the meeting moved twice, through ``memory_correct``; C expires."""
    first = make_memories([{"content": "The weekly meeting is at 3pm."}], with_embeddings=False)[0]
    expires = timezone.now() + timedelta(days=30)
    second = memory_correct(
        namespace="default", memory_id=first.pk, item=BatchItem(content="The weekly meeting is at 4pm.")
    )
    third = memory_correct(
        namespace="default",
        memory_id=second.memory.pk,
        item=BatchItem(content="The weekly meeting is at 5pm.", expires_at=expires),
    )
    return [Memory.objects.get(pk=pk) for pk in (first.pk, second.memory.pk, third.memory.pk)]


@pytest.fixture
def validities():
    """One memory per validity: current, superseded, expired, carrying a suggestion."""
    now = timezone.now()
    old, new, expired, suggesting, later = make_memories(
        [
            {"content": "The office is in Leeds."},
            {"content": "The office is in York."},
            {"content": "The sale ends on Friday.", "expires_at": now - timedelta(hours=1)},
            {"content": "Dana is not allergic to peanuts."},
            {"content": "The launch is in May.", "expires_at": now + timedelta(days=1)},
        ],
        with_embeddings=False,
    )
    supersede(new, old)
    suggest(suggesting, new)
    return {"old": old, "new": new, "expired": expired, "suggesting": suggesting, "later": later}


# --- the change page ---------------------------------------------------------------------------


def test_change_page_of_the_middle_memory_shows_the_chain_both_ways(admin_client, chain):
    first, second, third = chain

    response = admin_client.get(change_url(second))

    assert response.status_code == 200
    html = response.content.decode()
    table = section(html, "Correction chain")
    markers = (
        f'<a href="{change_url(first)}">The weekly meeting is at 3pm.</a>',
        "<strong>The weekly meeting is at 4pm.</strong>",
        f'<a href="{change_url(third)}">The weekly meeting is at 5pm.</a>',
    )
    positions = [table.index(marker) for marker in markers]
    assert positions == sorted(positions)
    assert "<td>-1</td>" in table and "<td>this memory</td>" in table and "<td>+1</td>" in table
    assert f"<td>{first.valid_until:%Y-%m-%d %H:%M:%S}</td>" in table  # when A was corrected
    assert f"<td>{third.expires_at:%Y-%m-%d %H:%M:%S}</td>" in table
    validity = section(html, "Validity:")
    assert validity.index(f"superseded at {second.valid_until:%Y-%m-%d %H:%M:%S} by") < validity.index(str(third.pk))


@pytest.mark.parametrize("end", [0, 2], ids=["first", "last"])
def test_change_page_of_either_end_follows_the_chain_to_the_other(admin_client, chain, end):
    html = admin_client.get(change_url(chain[end])).content.decode()

    table = section(html, "Correction chain")
    others = [m for i, m in enumerate(chain) if i != end]
    assert all(f'<a href="{change_url(m)}">{m.content}</a>' in table for m in others)
    assert ("<td>+2</td>" if end == 0 else "<td>-2</td>") in table


def test_change_page_shows_every_memory_one_superseded(admin_client):
    one, two, merged = make_memories(
        [{"content": "Sam lives in Oslo."}, {"content": "Sam works at Acme."}, {"content": "Sam lives in Bergen now."}],
        with_embeddings=False,
    )
    supersede(merged, one, two)

    table = section(admin_client.get(change_url(merged)).content.decode(), "Correction chain")

    assert table.count("<td>-1</td>") == 2
    assert "Sam lives in Oslo." in table and "Sam works at Acme." in table


def test_a_long_chain_is_cut_and_says_so(admin_client, monkeypatch):
    monkeypatch.setattr(memory_admin, "MAX_CHAIN_SHOWN", 2)
    versions = make_memories([{"content": f"The count is {i}."} for i in range(5)], with_embeddings=False)
    for older, newer in zip(versions, versions[1:]):
        supersede(newer, older)

    table = section(admin_client.get(change_url(versions[0])).content.decode(), "Correction chain")

    assert "<td>+2</td>" in table and "<td>+3</td>" not in table
    assert "Cut at 2 memories each way" in table


def test_change_page_without_corrections_says_so(admin_client, validities):
    html = admin_client.get(change_url(validities["later"])).content.decode()

    assert "<div class=\"readonly\">current</div>" in section(html, "Validity:")
    assert section(html, "Correction chain").split("</div>")[0].endswith("—")
    assert section(html, "Suggested correction").split("</div>")[0].endswith("—")


def test_change_page_shows_the_suggested_correction(admin_client, validities):
    suggesting, new = validities["suggesting"], validities["new"]

    html = admin_client.get(change_url(suggesting)).content.decode()

    suggestion = section(html, "Suggested correction")
    assert f'{new.pk}/change/">The office is in York.</a> (current), similarity 0.96' in suggestion


def test_change_page_shows_the_dismissed_suggestions(admin_client, validities):
    suggesting, new = validities["suggesting"], validities["new"]
    act(admin_client, "dismiss_correction", suggesting)

    suggestion = section(admin_client.get(change_url(suggesting)).content.decode(), "Suggested correction")

    assert "may correct" not in suggestion.split("</div>")[0]
    assert f'dismissed before (not suggested again): <a href="{change_url(new)}">{new.pk}</a>' in suggestion


def test_change_form_cannot_edit_the_supersession_but_can_set_the_expiry(admin_client, validities):
    old, new, later = validities["old"], validities["new"], validities["later"]
    before = Memory.objects.get(pk=old.pk)

    response = admin_client.post(
        change_url(old),
        {
            "category": "",
            "tags": "",
            "source": "",
            "metadata": "{}",
            "superseded_by": str(later.pk),
            "supersedes": str(new.pk),
            "valid_from": "2001-01-01 00:00:00",
            "valid_until": "",
            "expires_at_0": "2031-05-06",
            "expires_at_1": "07:08:09",
        },
    )

    assert response.status_code == 302
    after = Memory.objects.get(pk=old.pk)
    assert (after.superseded_by_id, after.supersedes, after.valid_from, after.valid_until) == (
        new.pk,
        [],
        before.valid_from,
        before.valid_until,
    )
    assert after.expires_at.isoformat() == "2031-05-06T07:08:09+00:00"


def test_a_deleted_memory_shows_its_expiry_read_only(admin_client, validities):
    Memory.objects.filter(pk=validities["later"].pk).update(deleted_at=timezone.now())

    html = admin_client.get(change_url(validities["later"])).content.decode()

    assert 'name="expires_at_0"' not in html


# --- the changelist --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("current", {"new", "suggesting", "later"}),
        ("superseded", {"old"}),
        ("expired", {"expired"}),
        ("suggested", {"suggesting"}),
    ],
)
def test_validity_filter(admin_client, validities, value, expected):
    contents = set(shown(admin_client.get(f"{CHANGELIST}?validity={value}")))

    assert contents == {validities[name].content for name in expected}


def test_validity_column_shows_the_state_of_each_fact(admin_client, validities):
    response = admin_client.get(CHANGELIST)

    column = {
        memory.content: response.context["cl"].model_admin.validity_column(memory)
        for memory in response.context["cl"].result_list
    }
    assert column == {
        "The office is in Leeds.": "superseded",
        "The office is in York.": "current",
        "The sale ends on Friday.": "expired",
        "Dana is not allergic to peanuts.": "current, correction suggested",
        "The launch is in May.": "current",
    }
    assert "<td class=\"field-validity_column\">superseded</td>" in response.content.decode()


# --- confirm / dismiss -----------------------------------------------------------------------------


@pytest.fixture
def pair():
    """A newer memory that consolidation found may correct an older one."""
    older, newer = make_memories(
        [{"content": "Dana is allergic to peanuts."}, {"content": "Dana is not allergic to peanuts."}],
        with_embeddings=False,
    )
    suggest(newer, older)
    return older, newer


def test_confirm_applies_the_suggested_correction(admin_client, pair):
    older, newer = pair

    response = act(admin_client, "confirm_correction", newer)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.superseded_by_id == newer.pk
    assert older.valid_until is not None
    assert newer.supersedes == [older.pk]
    assert CORRECTION_CANDIDATE not in newer.metadata
    assert messages_of(response) == ["1 suggested corrections confirmed."]


def test_confirm_of_an_older_memory_already_superseded_warns_and_changes_nothing(admin_client, pair):
    older, newer = pair
    other = make_memories([{"content": "Dana outgrew the peanut allergy."}], with_embeddings=False)[0]
    supersede(other, older)
    valid_until = Memory.objects.get(pk=older.pk).valid_until

    response = act(admin_client, "confirm_correction", newer)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.superseded_by_id, older.valid_until) == (other.pk, valid_until)
    assert newer.supersedes == [] and newer.valid_until is None
    assert newer.metadata[CORRECTION_CANDIDATE] == {"corrects": str(older.pk), "similarity": 0.96}
    assert [(m.level_tag, str(m)) for m in response.context["messages"]] == [
        (
            "warning",
            f'Suggested correction by <a href="{change_url(newer)}">Dana is not allergic to peanuts.</a> ({newer.pk}) '
            f"not confirmed: memory {older.pk} is already superseded by {other.pk}.",
        ),
        ("info", "0 suggested corrections confirmed."),
    ]


def test_confirm_reports_each_refusal_and_applies_the_others(admin_client, pair):
    older, newer = pair
    gone, stale, fine_old, fine_new = make_memories(
        [
            {"content": "The bus leaves at 8.", "deleted_at": timezone.now()},
            {"content": "The bus leaves at 9."},
            {"content": "The shop opens at 10."},
            {"content": "The shop opens at 11."},
        ],
        with_embeddings=False,
    )
    suggest(stale, gone)
    suggest(fine_new, fine_old)
    Memory.objects.filter(pk=newer.pk).update(metadata={CORRECTION_CANDIDATE: {"corrects": "not-an-id"}})

    response = act(admin_client, "confirm_correction", newer, stale, fine_new)

    assert Memory.objects.get(pk=fine_old.pk).superseded_by_id == fine_new.pk
    assert Memory.objects.get(pk=gone.pk).superseded_by_id is None
    assert Memory.objects.get(pk=older.pk).superseded_by_id is None
    found = messages_of(response)
    assert found[-1] == "1 suggested corrections confirmed."
    assert sorted(found[:-1]) == sorted(
        [
            f'Suggested correction by <a href="{change_url(stale)}">The bus leaves at 9.</a> ({stale.pk}) '
            f"not confirmed: memory {gone.pk} not found.",
            f'Suggested correction by <a href="{change_url(newer)}">Dana is not allergic to peanuts.</a> ({newer.pk}) '
            "not confirmed: the suggestion names no memory.",
        ]
    )


def test_confirm_of_a_chain_applies_the_oldest_first(admin_client):
    first, second, third = make_memories(
        [{"content": "The price is 10."}, {"content": "The price is 12."}, {"content": "The price is 15."}],
        with_embeddings=False,
    )
    Memory.objects.filter(pk=second.pk).update(created_at=first.created_at + timedelta(seconds=1))
    Memory.objects.filter(pk=third.pk).update(created_at=first.created_at + timedelta(seconds=2))
    suggest(second, first)
    suggest(third, second)

    response = act(admin_client, "confirm_correction", third, second)

    assert Memory.objects.get(pk=first.pk).superseded_by_id == second.pk
    assert Memory.objects.get(pk=second.pk).superseded_by_id == third.pk
    assert messages_of(response) == ["2 suggested corrections confirmed."]


def test_confirm_skips_memories_without_a_suggestion(admin_client, validities):
    response = act(admin_client, "confirm_correction", validities["later"])

    assert messages_of(response) == ["0 suggested corrections confirmed."]
    assert Memory.objects.get(pk=validities["later"].pk).supersedes == []


def test_dismiss_removes_the_suggestion_and_records_it_once(admin_client, pair):
    older, newer = pair
    metadata = {**newer.metadata, "note": "kept", CORRECTION_DISMISSED: [str(older.pk)]}
    Memory.objects.filter(pk=newer.pk).update(metadata=metadata)

    response = act(admin_client, "dismiss_correction", newer)

    newer.refresh_from_db()
    assert newer.metadata == {"note": "kept", CORRECTION_DISMISSED: [str(older.pk)]}
    assert Memory.objects.get(pk=older.pk).superseded_by_id is None
    assert messages_of(response) == ["1 suggested corrections dismissed (they will not be suggested again)."]


def test_dismiss_appends_to_the_earlier_dismissals(admin_client, pair):
    older, newer = pair
    earlier = "00000000-0000-4000-8000-000000000001"
    Memory.objects.filter(pk=newer.pk).update(metadata={**newer.metadata, CORRECTION_DISMISSED: [earlier]})

    act(admin_client, "dismiss_correction", newer)

    newer.refresh_from_db()
    assert newer.metadata == {CORRECTION_DISMISSED: [earlier, str(older.pk)]}
