"""The ``anima`` command (``anima_client.cli.main``) against a live Anima."""

import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from anima_client.cli import EXIT_ERROR, EXIT_UNREACHABLE, EXIT_USAGE, main
from memories.models import Memory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli_env(monkeypatch, anima_url, write_key):
    monkeypatch.setenv("ANIMA_URL", anima_url)
    monkeypatch.setenv("ANIMA_API_KEY", write_key)


def test_store_then_query_prints_the_memory(cli_env, capsys):
    stored = main(["store", "Dana is allergic to peanuts.", "--category", "health", "--tag", "dana"])
    stored_out = capsys.readouterr().out
    found = main(["query", "What should Dana avoid?", "--limit", "3"])
    found_out = capsys.readouterr().out

    assert (stored, found) == (0, 0)
    assert stored_out.startswith("Remembered as ")
    assert "Dana is allergic to peanuts." in found_out
    assert "health · #dana" in found_out
    assert "similarity" in found_out


def test_store_reads_stdin_for_a_dash(cli_env, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("Read from standard input."))

    assert main(["store", "-", "--json"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert shown["memory"]["content"] == "Read from standard input."


def test_bootstrap_json_prints_the_api_shape(cli_env, capsys, anima):
    anima.add("Bootstrapped from the command line.")

    assert main(["bootstrap", "--limit", "5", "--json"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert [m["content"] for m in shown["memories"]["active"]] == ["Bootstrapped from the command line."]
    assert shown["distribution"] == {"active": 1, "thread": 0, "stable": 0, "total": 1}


def test_bootstrap_text_groups_by_tier(cli_env, capsys, anima):
    memory = anima.add("A stable fact.").memory
    anima.update_tier(memory.id, "stable")

    assert main(["bootstrap", "--no-active"]) == 0

    out = capsys.readouterr().out
    assert "## Stable" in out
    assert "A stable fact." in out


def test_stats_prints_the_totals(cli_env, capsys, anima):
    anima.add("A catalyst.", is_catalyst=True, category="work")

    assert main(["stats"]) == 0

    out = capsys.readouterr().out
    assert "memories:       1" in out
    assert "top category:   work" in out


def test_the_key_file_is_used_when_no_key_is_set(monkeypatch, tmp_path, capsys, anima_url, write_key):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "local-api-key").write_text(write_key + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANIMA_DATA_DIR", raising=False)
    monkeypatch.setenv("ANIMA_URL", anima_url)

    assert main(["stats", "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["totalMemories"] == 0


def test_an_error_answer_exits_1_with_code_and_fields(cli_env, capsys):
    assert main(["query", "x", "--limit", "500"]) == EXIT_ERROR

    err = capsys.readouterr().err
    assert "VALIDATION_ERROR" in err
    assert "limit:" in err


def test_an_unreachable_service_exits_3(monkeypatch, capsys):
    monkeypatch.setenv("ANIMA_API_KEY", "anima_x_y")
    monkeypatch.setattr("anima_client.client.sleep", lambda seconds: None)

    assert main(["stats", "--url", "http://127.0.0.1:9"]) == EXIT_UNREACHABLE

    assert "is Anima running?" in capsys.readouterr().err


def test_the_checkouts_key_file_is_found_from_any_directory(monkeypatch, tmp_path, capsys, anima_url, write_key):
    checkout, elsewhere = tmp_path / "anima", tmp_path / "elsewhere"
    (checkout / "var").mkdir(parents=True)
    elsewhere.mkdir()
    (checkout / "var" / "local-api-key").write_text(write_key + "\n")
    monkeypatch.setattr("anima_client.config._CHECKOUT", checkout)
    monkeypatch.chdir(elsewhere)  # as a desktop app launches it
    monkeypatch.delenv("ANIMA_DATA_DIR", raising=False)

    assert main(["stats", "--url", anima_url, "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["totalMemories"] == 0


# --- store-batch, query filters, forget, pinned ------------------------------------------------


def test_store_batch_reads_json_lines_and_names_the_invalid_lines(cli_env, capsys, tmp_path, anima):
    anima.add("Batch file: the gate code changed.")
    batch = tmp_path / "notes.jsonl"
    batch.write_text(
        '"Batch file: the plumber comes on Monday."\n'
        '{"content": "Batch file: Dana prefers window seats.", "tags": ["dana"], "isCatalyst": true}\n'
        "\n"
        '{"content": "Batch file: the gate code changed."}\n'
        '{"content": ""}\n'
    )

    code = main(["store-batch", str(batch), "--source", "import"])

    out = capsys.readouterr().out
    assert code == EXIT_ERROR  # the valid items are stored; the exit status says not all were
    assert "4 items: 2 stored, 1 already remembered (reinforced), 1 invalid." in out
    assert "- line 5: content: " in out
    seats = Memory.objects.get(content="Batch file: Dana prefers window seats.")
    assert (seats.source, seats.tags, seats.is_catalyst) == ("import", ["dana"], True)
    assert Memory.objects.get(content="Batch file: the plumber comes on Monday.").source == "import"


def test_store_batch_reads_a_json_array_from_stdin_in_chunks(cli_env, capsys, monkeypatch):
    monkeypatch.setattr("anima_client.cli.BATCH_SIZE", 2)
    items = [f"Chunked batch note number {n}." for n in range(4)] + ["Chunked batch note number 0."]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(items)))

    assert main(["store-batch", "-", "--json"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert [item["index"] for item in shown["items"]] == [0, 1, 2, 3, 4]
    assert [item["status"] for item in shown["items"]] == ["created"] * 4 + ["duplicate"]
    assert shown["items"][4]["memoryId"] == shown["items"][0]["memoryId"]
    assert shown["counts"] == {"created": 4, "duplicate": 1, "invalid": 0}
    assert Memory.objects.count() == 4


@pytest.mark.parametrize(
    "text, message",
    [("", "no items"), ('"fine"\n{"content": \n', "line 2: not JSON"), ("[1]", "item [0]: expected a JSON object")],
)
def test_store_batch_with_an_unreadable_file_exits_2_and_sends_nothing(cli_env, capsys, tmp_path, text, message):
    batch = tmp_path / "bad.jsonl"
    batch.write_text(text)

    assert main(["store-batch", str(batch)]) == EXIT_USAGE

    assert message in capsys.readouterr().err
    assert not Memory.objects.exists()


def test_store_batch_of_a_missing_file_exits_2(cli_env, capsys, tmp_path):
    assert main(["store-batch", str(tmp_path / "missing.jsonl")]) == EXIT_USAGE

    assert "cannot read" in capsys.readouterr().err


def test_query_takes_metadata_since_and_recency(cli_env, capsys, anima):
    fresh = anima.add("Apollo release notes go in the wiki.", metadata={"project": "apollo", "floor": 3}).memory
    old = anima.add("Apollo rollbacks need two approvals.", metadata={"project": "apollo", "floor": 3}).memory
    anima.add("Zeus releases need a change ticket.", metadata={"project": "zeus", "floor": "3"})
    Memory.objects.filter(pk=old.id).update(created_at=timezone.now() - timedelta(days=30))

    recent = main(["query", "release rules", "--threshold", "0", "--metadata", "project=apollo", "--since", "7d", "--json"])
    recent_out = json.loads(capsys.readouterr().out)
    by_floor = main(["query", "release rules", "--threshold", "0", "--metadata", "floor=3", "--recency-days", "7"])
    by_floor_out = capsys.readouterr().out

    assert (recent, by_floor) == (0, 0)
    assert [m["id"] for m in recent_out["memories"]] == [str(fresh.id)]
    assert "Apollo release notes" in by_floor_out and "Apollo rollbacks" in by_floor_out
    assert "Zeus" not in by_floor_out  # its floor is the string "3"


ANY_ID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    "argv",
    [
        ["query", "x", "--since", "last week"],
        ["query", "x", "--metadata", "no-equals"],
        ["query", "x", "--as-of", "2026-01-01", "--include-superseded"],
        ["forget", "not-an-id"],
        ["forget", ANY_ID, "--chain"],
        ["correct", ANY_ID],
        ["correct", ANY_ID, "New content.", "--by", ANY_ID],
        ["correct", ANY_ID, "--by", "not-an-id"],
    ],
)
def test_bad_filter_or_id_is_a_usage_error(cli_env, capsys, argv):
    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2


def test_forget_soft_deletes_and_purge_removes_for_good(cli_env, capsys, anima):
    soft = anima.add("Forget me softly.").memory
    hard = anima.add("Forget me for good.").memory

    assert main(["forget", str(soft.id)]) == 0
    soft_out = capsys.readouterr().out
    assert main(["forget", str(hard.id), "--purge", "--json"]) == 0
    hard_out = json.loads(capsys.readouterr().out)

    assert soft_out.startswith(f"Deleted {soft.id}") and "restored" in soft_out
    assert Memory.objects.get(pk=soft.id).deleted_at is not None
    assert (hard_out["id"], hard_out["purged"], hard_out["counts"]["memories"]) == (str(hard.id), True, 1)
    assert not Memory.objects.filter(pk=hard.id).exists()
    assert main(["forget", str(hard.id)]) == EXIT_ERROR
    assert "MEMORY_NOT_FOUND" in capsys.readouterr().err


def test_bootstrap_text_shows_pinned_memories_first(cli_env, capsys, anima):
    stable = anima.add("A stable fact next to a pinned one.").memory
    pinned = anima.add("Always remember: Dana is vegetarian.").memory
    anima.update_tier(stable.id, "stable")
    anima.memories.patch(pinned.id, pinned=True)

    assert main(["bootstrap"]) == 0

    out = capsys.readouterr().out
    assert out.index("## Pinned") < out.index("Always remember: Dana is vegetarian.") < out.index("## Stable")
    assert "· pinned]" in out
    assert "2 memories loaded" in out


def test_correct_prints_the_new_id_and_query_shows_the_history(cli_env, capsys, anima):
    old = anima.add("Dana lives in Paris.", tags=["dana"]).memory
    before = timezone.now().isoformat()

    corrected = main(["correct", str(old.id), "Dana lives in Lyon now.", "--tag", "dana"])
    corrected_out = capsys.readouterr().out
    new = Memory.objects.get(content="Dana lives in Lyon now.")
    current = main(["query", "Where does Dana live?", "--threshold", "0"])
    current_out = capsys.readouterr().out
    history = main(["query", "Where does Dana live?", "--threshold", "0", "--include-superseded"])
    history_out = capsys.readouterr().out
    then = main(["query", "Where does Dana live?", "--threshold", "0", "--as-of", before, "--json"])
    then_out = json.loads(capsys.readouterr().out)

    assert (corrected, current, history, then) == (0, 0, 0, 0)
    assert corrected_out.startswith(f"Corrected {old.id}: superseded by {new.id}")
    assert "was: Dana lives in Paris." in corrected_out and "now: Dana lives in Lyon now." in corrected_out
    assert new.tags == ["dana"] and new.supersedes == [old.id]
    assert "Lyon" in current_out and "Paris" not in current_out
    assert f"corrects 1 older memory: {str(old.id)[:8]}" in current_out
    assert f"superseded by {str(new.id)[:8]}" in history_out and "Paris" in history_out
    assert [m["id"] for m in then_out["memories"]] == [str(old.id)]


def test_store_suggests_a_correction_and_correct_by_confirms_it(cli_env, capsys, anima):
    old = anima.add("Dana is allergic to peanuts.").memory

    stored = main(["store", "Dana is not allergic to peanuts."])
    stored_out = capsys.readouterr().out
    new = Memory.objects.get(content="Dana is not allergic to peanuts.")
    confirmed = main(["correct", str(old.id), "--by", str(new.id)])
    confirmed_out = capsys.readouterr().out
    again = main(["correct", str(old.id), "--by", str(new.id)])

    assert (stored, confirmed, again) == (0, 0, EXIT_ERROR)
    assert f"may correct {str(old.id)[:8]} — confirm with: anima correct {old.id} --by {new.id}" in stored_out
    assert confirmed_out.startswith(f"Corrected {old.id}: superseded by {new.id}")
    assert "CONFLICT" in capsys.readouterr().err
    assert Memory.objects.get(pk=old.id).superseded_by_id == new.id


def test_forget_purge_chain_removes_the_corrections_too(cli_env, capsys, anima):
    old = anima.add("Dana lives in Paris.").memory
    new = anima.correct(old.id, "Dana lives in Lyon now.").memory

    assert main(["forget", str(new.id), "--purge", "--chain", "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["counts"]["memories"] == 2
    assert not Memory.objects.filter(pk__in=[old.id, new.id]).exists()
