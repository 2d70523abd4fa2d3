"""``manage.py recall_benchmark``: LoCoMo-format data through the real API, scored per question."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from benchmarks.recall_benchmark import load_locomo, question_scores
from keys.models import ApiKey
from memories.models import Memory

CONVERSATION = {
    "sample_id": "conv-test",
    "conversation": {
        "speaker_a": "Ana",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a grey kitten named Pixel last week."},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "Congratulations! I started learning the cello."},
            {
                "speaker": "Ana",
                "dia_id": "D1:3",
                "text": "Look at this.",
                "blip_caption": "a photo of a lighthouse at sunset",
            },
        ],
        "session_2_date_time": "10:00 am on 9 June, 2023",
        "session_2": [
            {"speaker": "Ben", "dia_id": "D2:1", "text": "My cello teacher says I am improving fast."},
            {"speaker": "Ana", "dia_id": "D2:2", "text": "Pixel knocked my coffee off the desk."},
        ],
    },
    "qa": [
        {"question": "What is the name of Ana's kitten?", "answer": "Pixel", "evidence": ["D1:1"], "category": 4},
        {"question": "Which instrument is Ben learning?", "answer": "cello", "evidence": ["D1:2; D2:1"], "category": 1},
        {"question": "What did Ana photograph?", "answer": "a lighthouse", "evidence": ["D:1:3"], "category": 4},
        {"question": "Unanswerable?", "answer": "-", "evidence": [], "category": 5},
        {"question": "A turn that does not exist?", "answer": "-", "evidence": ["D9:9"], "category": 2},
    ],
}


@pytest.fixture
def locomo_file(tmp_path):
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([CONVERSATION]))
    return path


def test_evidence_ids_are_repaired_and_unknown_ones_dropped(locomo_file):
    [conversation] = load_locomo(locomo_file)

    assert [q.evidence for q in conversation.questions] == [["D1:1"], ["D1:2", "D2:1"], ["D1:3"]]
    assert conversation.evidence_dropped == 1
    assert conversation.questions_skipped == 1  # category 5 is left out before, not counted
    assert conversation.turns[2].content == "Ana: Look at this. [shares a photo: a photo of a lighthouse at sunset]"
    assert conversation.turns[3].occurred_at.isoformat() == "2023-06-09T10:00:00+00:00"


def test_scores_count_evidence_among_the_top_k_and_the_first_hit_rank():
    ranked = [{"D1:5"}, {"D1:2"}] + [set()] * 8 + [{"D2:1"}]

    scores = question_scores(ranked, ["D1:2", "D2:1"])

    assert scores == {"recall@5": 0.5, "recall@10": 0.5, "recall@20": 1.0, "mrr": 0.5}


def test_an_unknown_conversation_is_named(locomo_file):
    with pytest.raises(CommandError, match="conv-99"):
        call_command("recall_benchmark", str(locomo_file), "--conversations", "conv-99", "--no-progress")


@pytest.mark.django_db
def test_a_run_stores_asks_scores_writes_and_cleans_up(locomo_file, tmp_path):
    out = io.StringIO()

    call_command("recall_benchmark", str(locomo_file), "--output", str(tmp_path / "report"), "--no-progress", stdout=out)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["data"] == {
        "path": str(locomo_file),
        "conversations": ["conv-test"],
        "turns": 5,
        "questions": 3,
        "evidenceIdsDropped": 1,
        "questionsWithoutEvidence": 1,
    }
    assert report["results"]["overall"]["questions"] == 3
    assert report["results"]["overall"]["recall@5"] == 1.0  # five turns: all of them come back
    assert report["results"]["byCategory"]["4 single-hop"]["questions"] == 2
    assert "| **all** | 3 |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report.png").stat().st_size > 0
    assert "recall@10 1.000" in out.getvalue()
    assert not Memory.objects.filter(namespace__startswith="bench-").exists()
    assert not ApiKey.objects.filter(namespace__startswith="bench-").exists()
