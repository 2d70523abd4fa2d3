"""LoCoMo conversations as the offline recall experiments read them.

A turn's text is what the service stores for it in ``manage.py recall_benchmark``
(``"Speaker: text"``, plus ``" [shares a photo: caption]"`` when the turn shared an
image), so offline scores and the benchmark's scores are comparable. Questions of
categories 1–4 are kept with their evidence ids repaired the same way the benchmark
repairs them (``"D8:6; D9:17"`` split, ``"D:11:26"`` → ``D11:26``, ``"D30:05"`` →
``D30:5``); ids that name no turn are dropped and counted, and a question left with no
evidence is skipped.

usage: python locomo.py PATH   (per conversation: turns, questions kept, evidence ids
dropped, questions skipped for want of evidence)
"""

import argparse
import json
import sys
from pathlib import Path

# The format rules live in the service (benchmarks/locomo.py, plain Python): one reading of
# LoCoMo for the benchmark and for these experiments.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.locomo import ADVERSARIAL_CATEGORY, evidence_repair, session_date_parse  # noqa: E402
from benchmarks.locomo import turn_content  # noqa: E402


def load_conversations(path: str, *, photo_captions: bool = True) -> list[dict]:
    """Each conversation as ``{id, turns: [{id, text, date, session}], qs: [{q, ev, cat}], dropped, skipped}``:
    ``dropped`` counts evidence ids naming no turn, ``skipped`` questions left without evidence."""
    with open(path) as handle:
        items = json.load(handle)
    conversations = []
    for item in items:
        sessions = item["conversation"]
        turns = []
        number = 1
        while f"session_{number}" in sessions:
            date = session_date_parse(sessions[f"session_{number}_date_time"])
            for turn in sessions[f"session_{number}"]:
                turns.append(
                    dict(id=turn["dia_id"], text=turn_content(turn, photo_captions=photo_captions),
                         date=date, session=number)
                )
            number += 1
        known_ids = {turn["id"] for turn in turns}
        questions, dropped, skipped = [], 0, 0
        for qa in item["qa"]:
            if qa["category"] == ADVERSARIAL_CATEGORY:
                continue
            evidence, missing = evidence_repair(qa["evidence"], known_ids)
            dropped += missing
            if evidence:
                questions.append(dict(q=qa["question"], ev=evidence, cat=qa["category"]))
            else:
                skipped += 1
        conversations.append(
            dict(id=item["sample_id"], turns=turns, qs=questions, dropped=dropped, skipped=skipped)
        )
    return conversations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a LoCoMo file, e.g. ../shared/data/locomo-dev5.json")
    args = parser.parse_args()
    for conversation in load_conversations(args.path):
        print(conversation["id"], f"turns {len(conversation['turns'])}", f"questions {len(conversation['qs'])}",
              f"evidence ids dropped {conversation['dropped']}", f"questions skipped {conversation['skipped']}")


if __name__ == "__main__":
    main()
