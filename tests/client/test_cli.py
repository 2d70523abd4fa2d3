"""The ``anima`` command (``anima_client.cli.main``) against a live Anima."""

import io
import json

import pytest

from anima_client.cli import EXIT_ERROR, EXIT_UNREACHABLE, main

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
