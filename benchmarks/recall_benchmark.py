"""The retrieval benchmark behind ``manage.py recall_benchmark``: LoCoMo through the real API.

LoCoMo (snap-research/LoCoMo, ``data/locomo10.json`` format) holds long two-person
conversations and questions whose answers lie in named turns ("evidence"). For each
conversation this stores every turn as one memory through ``POST /memories/add-batch``
(content ``"Speaker: text"``, plus ``" [shares a photo: caption]"`` when the turn shared
an image, as LoCoMo's own baselines read it; ``occurredAt`` = the session's date; tag =
the conversation id) in a namespace of its own, then asks every question of categories
1–4, in order, through ``POST /memories/query`` with the settings' defaults (mode,
threshold) and ``limit`` 20, with a ``conversationId`` — so each query counts its
accesses, promotions and co-occurrences as an assistant's would, and whatever a hit
does to later rankings shows up in the later questions.

Scores per question: recall@k = the share of its evidence turns among the top k
(k = 5, 10, 20), MRR = 1 / rank of the first evidence turn (0 when none is in the top
20); averaged overall, per category (1 multi-hop, 2 temporal, 3 open-domain,
4 single-hop), per conversation, and for the first ten questions of each conversation
against the later ones (recall must not decay with use).

Evidence ids are repaired as the data's README asks: ``"D8:6; D9:17"`` is split into
two, ``"D:11:26"`` read as ``D11:26``, ``"D30:05"`` as ``D30:5``; ids naming no turn are
dropped (counted in the report), and a question left without evidence is skipped.

Develop and tune on the development conversations only; the held-out ones are measured
separately (``--conversations`` picks them out of a file) and never tuned on.
"""

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.test.utils import override_settings
from tqdm import tqdm

from benchmarks.benchmarking import (
    InProcessClient,
    background_work_remove,
    code_version,
    machine_info,
    namespace_create,
    namespace_remove,
)
from benchmarks.locomo import ADVERSARIAL_CATEGORY, evidence_repair, session_date_parse, turn_content

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10, 20)
QUERY_LIMIT = 20
BATCH = 100
FIRST_QUESTIONS = 10


class RecallBenchmarkError(Exception):
    pass


@dataclass
class Turn:
    dia_id: str
    content: str
    occurred_at: datetime


@dataclass
class Question:
    text: str
    category: int
    evidence: list[str]


@dataclass
class Conversation:
    sample_id: str
    turns: list[Turn]
    questions: list[Question]
    evidence_dropped: int = 0
    questions_skipped: int = 0


def load_locomo(path: Path, *, only: list[str] | None = None) -> list[Conversation]:
    try:
        items = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RecallBenchmarkError(f"cannot read {path}: {exc}") from None
    conversations = []
    for item in items:
        if only and item["sample_id"] not in only:
            continue
        sessions = item["conversation"]
        turns, number = [], 1
        while f"session_{number}" in sessions:
            # LoCoMo gives no zone: read as UTC.
            occurred_at = session_date_parse(sessions[f"session_{number}_date_time"]).replace(tzinfo=UTC)
            turns += [Turn(t["dia_id"], turn_content(t), occurred_at) for t in sessions[f"session_{number}"]]
            number += 1
        known = {t.dia_id for t in turns}
        conversation = Conversation(item["sample_id"], turns, [])
        for qa in item["qa"]:
            if qa["category"] == ADVERSARIAL_CATEGORY:
                continue
            evidence, dropped = evidence_repair(qa.get("evidence", []), known)
            conversation.evidence_dropped += dropped
            if evidence:
                conversation.questions.append(Question(qa["question"], qa["category"], evidence))
            else:
                conversation.questions_skipped += 1
        conversations.append(conversation)
    missing = set(only or []) - {c.sample_id for c in conversations}
    if missing:
        raise RecallBenchmarkError(f"not in {path}: {', '.join(sorted(missing))}")
    if not conversations:
        raise RecallBenchmarkError(f"no conversations in {path}")
    return conversations


def question_scores(ranked_turns: list[set[str]], evidence: list[str]) -> dict:
    """recall@k and the reciprocal rank for one question; ``ranked_turns[i]`` holds the turn
    ids of the i-th result (one memory can hold several identical turns)."""
    scores = {}
    for k in KS:
        found = set().union(*ranked_turns[:k]) if ranked_turns[:k] else set()
        scores[f"recall@{k}"] = sum(e in found for e in evidence) / len(evidence)
    first = next((rank for rank, turns in enumerate(ranked_turns, start=1) if turns & set(evidence)), None)
    scores["mrr"] = 1.0 / first if first else 0.0
    return scores


def _mean(rows: list[dict]) -> dict:
    if not rows:
        return {"questions": 0}
    return {"questions": len(rows), **{key: round(float(np.mean([r[key] for r in rows])), 4) for key in rows[0]}}


@dataclass
class RecallOptions:
    path: Path
    conversations: list[str] | None = None
    query_phi_increment: float | None = None
    mode: str | None = None
    keep: bool = False
    progress: bool = True
    command: str = ""
    label: str = ""
    extra_settings: dict = field(default_factory=dict)


def _post(client, path: str, body: dict, expected: int | tuple) -> dict:
    status, content = client.post(path, body)
    if status not in ((expected,) if isinstance(expected, int) else expected):
        raise RecallBenchmarkError(f"{path} answered {status}: {content[:300]!r}")
    return json.loads(content)


def _store(client, conversation: Conversation, *, progress) -> dict[str, set[str]]:
    """Every turn through add-batch; returns memory id → the turn ids it holds."""
    holds: dict[str, set[str]] = defaultdict(set)
    for start in range(0, len(conversation.turns), BATCH):
        chunk = conversation.turns[start : start + BATCH]
        items = [
            {"content": t.content, "occurredAt": t.occurred_at.isoformat(), "tags": [conversation.sample_id]}
            for t in chunk
        ]
        body = _post(client, "/api/v1/memories/add-batch", {"items": items}, (200, 201))
        for turn, outcome in zip(chunk, body["data"]["items"]):
            if outcome["status"] == "invalid":
                raise RecallBenchmarkError(f"turn {turn.dia_id} refused: {outcome}")
            holds[outcome["memoryId"]].add(turn.dia_id)
        progress.update(len(chunk))
    return holds


def _ask(client, conversation: Conversation, holds, *, mode, progress) -> list[dict]:
    rows = []
    for number, question in enumerate(conversation.questions):
        body = {"query": question.text, "limit": QUERY_LIMIT, "conversationId": f"locomo-{conversation.sample_id}"}
        if mode:
            body["mode"] = mode
        started = time.perf_counter()
        answer = _post(client, "/api/v1/memories/query", body, 200)
        elapsed = (time.perf_counter() - started) * 1000
        ranked = [holds.get(hit["id"], set()) for hit in answer["data"]["memories"]]
        rows.append(
            {
                "conversation": conversation.sample_id,
                "index": number,
                "category": question.category,
                "ms": elapsed,
                **question_scores(ranked, question.evidence),
            }
        )
        progress.update(1)
    return rows


def summarise(rows: list[dict]) -> dict:
    def scores(selected):
        return _mean([{k: r[k] for k in r if k.startswith("recall@") or k == "mrr"} for r in selected])

    return {
        "overall": scores(rows),
        "byCategory": {
            f"{number} {name}": scores([r for r in rows if r["category"] == number])
            for number, name in CATEGORIES.items()
        },
        "byConversation": {
            sample: scores([r for r in rows if r["conversation"] == sample])
            for sample in dict.fromkeys(r["conversation"] for r in rows)
        },
        "firstTenVsLater": {
            "first10": scores([r for r in rows if r["index"] < FIRST_QUESTIONS]),
            "later": scores([r for r in rows if r["index"] >= FIRST_QUESTIONS]),
        },
        "queryMs": {
            "p50": round(float(np.percentile([r["ms"] for r in rows], 50)), 2),
            "p95": round(float(np.percentile([r["ms"] for r in rows], 95)), 2),
        },
    }


def run_recall_benchmark(options: RecallOptions, *, log=print) -> dict:
    conversations = load_locomo(options.path, only=options.conversations)
    started_at = datetime.now(UTC)
    overrides = {"ANIMA_RATE_LIMIT": "off", **options.extra_settings}
    if options.query_phi_increment is not None:
        overrides["ANIMA_QUERY_PHI_INCREMENT"] = options.query_phi_increment
    rows: list[dict] = []
    created = []
    try:
        with override_settings(**overrides):
            for conversation in conversations:
                namespace, key, secret = namespace_create(datetime.now(UTC))
                created.append((namespace, key.pk))
                client = InProcessClient(secret)
                total = len(conversation.turns) + len(conversation.questions)
                with tqdm(total=total, desc=conversation.sample_id, unit="req", disable=not options.progress) as bar:
                    holds = _store(client, conversation, progress=bar)
                    rows += _ask(client, conversation, holds, mode=options.mode, progress=bar)
                r10 = np.mean([r["recall@10"] for r in rows if r["conversation"] == conversation.sample_id])
                log(f"{conversation.sample_id}: {len(conversation.questions)} questions, recall@10 {r10:.3f}")
            effective = {
                "mode": options.mode or "default (hybrid)",
                "similarityThreshold": settings.ANIMA_SIMILARITY_THRESHOLD,
                "queryPhiIncrement": settings.ANIMA_QUERY_PHI_INCREMENT,
                "limit": QUERY_LIMIT,
            }
    finally:
        for namespace, key_id in created:
            background_work_remove(namespace=namespace)
            if not options.keep:
                namespace_remove(namespace=namespace, key_id=key_id)
    return {
        "schema": 1,
        "label": options.label,
        "command": options.command,
        "startedAt": started_at.isoformat(timespec="seconds"),
        "finishedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "code": code_version(),
        "data": {
            "path": str(options.path),
            "conversations": [c.sample_id for c in conversations],
            "turns": sum(len(c.turns) for c in conversations),
            "questions": sum(len(c.questions) for c in conversations),
            "evidenceIdsDropped": sum(c.evidence_dropped for c in conversations),
            "questionsWithoutEvidence": sum(c.questions_skipped for c in conversations),
        },
        "settings": effective,
        "results": summarise(rows),
        "perQuestion": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }


def render_markdown(report: dict) -> str:
    res = report["results"]
    lines = [
        f"# LoCoMo retrieval through the API{' — ' + report['label'] if report['label'] else ''}",
        "",
        f"`{report['command']}` at {report['code'].get('commit', '?')} on {report['startedAt']}; "
        f"{report['data']['questions']} questions over {report['data']['turns']} turns "
        f"({', '.join(report['data']['conversations'])}); settings {json.dumps(report['settings'])}.",
        "",
        "| slice | questions | R@5 | R@10 | R@20 | MRR |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def row(name, s):
        if not s.get("questions"):
            return f"| {name} | 0 | | | | |"
        scores = " | ".join(f"{s[key]:.3f}" for key in ("recall@5", "recall@10", "recall@20", "mrr"))
        return f"| {name} | {s['questions']} | {scores} |"

    lines.append(row("**all**", res["overall"]))
    lines += [row(f"category {name}", s) for name, s in res["byCategory"].items()]
    lines += [row(name, s) for name, s in res["byConversation"].items()]
    lines.append(row("first 10 questions of each conversation", res["firstTenVsLater"]["first10"]))
    lines.append(row("later questions", res["firstTenVsLater"]["later"]))
    lines += ["", f"Query latency in-process (ms): p50 {res['queryMs']['p50']}, p95 {res['queryMs']['p95']}.", ""]
    return "\n".join(lines)


def render_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["perQuestion"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(report["results"]["byCategory"])
    values = [report["results"]["byCategory"][n].get("recall@10", 0) for n in names]
    left.bar(names + ["all"], values + [report["results"]["overall"]["recall@10"]], color="#4a7ab5")
    left.set_ylim(0, 1)
    left.set_ylabel("evidence recall@10")
    left.set_title("by category")
    left.tick_params(axis="x", labelrotation=20)
    buckets = defaultdict(list)
    for r in rows:
        buckets[r["index"] // 10].append(r["recall@10"])
    xs = sorted(buckets)
    right.plot([10 * x + 5 for x in xs], [np.mean(buckets[x]) for x in xs], marker="o")
    right.set_ylim(0, 1)
    right.set_xlabel("question number within its conversation (buckets of 10)")
    right.set_title("recall@10 as the conversation goes on")
    fig.suptitle(f"LoCoMo through the API {report['label']}".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(report: dict, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(report, indent=1) + "\n")
    paths[1].write_text(render_markdown(report))
    render_plot(report, paths[2])
    return paths
