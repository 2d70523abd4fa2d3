"""Is a candidate's hybrid loss only the service's 0.7 share and 0.3 threshold, which were
tuned on MiniLM's cosine scale? Re-tunes both per model and prints each model's cosine range.

The sweep tunes and scores on the same development conversations, so its best numbers
are optimistic; a candidate that loses even then loses for real.

usage: PY scripts/offline_recall/models/sweep.py --prep /tmp/offline_recall/prep.pkl \
           --embeddings /tmp/offline_recall/emb_*.pkl
Any interpreter with numpy will do (it loads no model).
"""

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # evaluate.py

from evaluate import (  # noqa: E402
    SERVICE_MAX_DF,
    SERVICE_SIMILARITY_SHARE,
    SERVICE_SIMILARITY_THRESHOLD,
    TextScoreCache,
    load_prepared,
    recall_summary,
    service_scorer,
)
from recall import embeddings_name, with_vectors  # noqa: E402

SIMILARITY_SHARES = (0.5, 0.6, 0.7, 0.8, 0.9)
#: Thresholds besides the service's: the median and the 90th percentile of a model's all-pairs cosines.
THRESHOLD_PERCENTILES = (50, 90)
BEST_SHOWN = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prep", required=True, help="pickle written by prepare.py")
    parser.add_argument("--embeddings", nargs="+", required=True, help="pickles written by embed.py")
    args = parser.parse_args()

    conversations = load_prepared(args.prep)
    cache = TextScoreCache()
    for path in sorted(args.embeddings):
        with open(path, "rb") as handle:
            vectors = pickle.load(handle)
        swapped = with_vectors(conversations, vectors)
        cosines = np.concatenate([(v["Q"] @ v["E"].T).ravel() for v in vectors.values()])
        top_1 = np.concatenate([np.sort(v["Q"] @ v["E"].T, 1)[:, -1] for v in vectors.values()])
        p5, p50, p95 = np.percentile(cosines, [5, 50, 95])
        print(f"{embeddings_name(path)}: cos all-pairs p5/p50/p95 {p5:.2f}/{p50:.2f}/{p95:.2f}"
              f"  top-1 median {np.median(top_1):.2f}", flush=True)
        thresholds = [SERVICE_SIMILARITY_THRESHOLD]
        thresholds += [float(np.percentile(cosines, p)) for p in THRESHOLD_PERCENTILES]
        results = []
        for threshold in thresholds:
            for share in SIMILARITY_SHARES:
                scorer = service_scorer(cache, similarity_share=share, threshold=threshold, binary_tf=True,
                                        max_df=SERVICE_MAX_DF)
                results.append((recall_summary(scorer, swapped)["all"], share, threshold))
        shipped = next(r for r, share, threshold in results
                       if share == SERVICE_SIMILARITY_SHARE and threshold == SERVICE_SIMILARITY_THRESHOLD)
        results.sort(reverse=True)
        print("   best (R@10, share, threshold):",
              " ".join(f"({r:.4f},{share},{threshold:.2f})" for r, share, threshold in results[:BEST_SHOWN]),
              f" | share {SERVICE_SIMILARITY_SHARE} threshold {SERVICE_SIMILARITY_THRESHOLD}: {shipped:.4f}",
              flush=True)


if __name__ == "__main__":
    main()
