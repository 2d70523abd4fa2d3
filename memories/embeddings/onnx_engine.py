"""The bundled model's transformer run by ONNX Runtime: the local provider's default engine.

Measured on this project's 2-core machine, one thread per process (``docs/benchmarks/onnx/``):
one 70-character text embeds in 3.4 ms instead of torch's 7.9 ms (the request path: a new
query, a new memory), a batch of 32 in about the same time as torch (1.04×), and every vector
has cosine ≥ 0.99999988 with torch's, so vectors stored by either engine stay comparable
(no re-embedding). A worker serving from the file never imports torch: about 300 MB less
per gunicorn worker. The int8 quantisation was 2× faster again but fell to cosine 0.94 on
short texts: not used.

The ``.onnx`` file is not shipped: it is exported from the bundled weights by torch's
TorchScript exporter on first use (a few seconds) into ``ANIMA_DATA_DIR/models/``, named by
the weights' SHA-256 and the torch version, and reused by every process after that. A
concurrent first use by several workers exports more than once and keeps one file (each
writes a temporary file and renames it into place).

Tokens, pooling and normalisation are sentence-transformers' for this model: the
``tokenizer.json`` WordPiece tokenizer cut at ``max_seq_length`` (a text longer than that
is *truncated*, as the provider reports), padding to the longest text of a batch, the
attention-masked mean of the last hidden state, L2 normalised.
"""

import hashlib
import json
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

OUTPUT = "last_hidden_state"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    with open(model_dir / "model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def exported_path(model_dir: Path, cache_dir: Path) -> Path:
    """The ``.onnx`` file of ``model_dir``'s transformer, exported on first use (the only
    time torch is imported: a process serving from the file never loads it)."""
    torch_version = metadata.version("torch").replace("+", "-")
    path = cache_dir / f"minilm-{weights_digest(model_dir)}-torch{torch_version}-opset{OPSET}.onnx"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        _export(model_dir, path)
    return path


def _export(model_dir: Path, path: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    transformer = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, OUTPUT)}
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        # The exporter's notes on tracing this model (and its advanced indexing, with no
        # negative indices here) are not the operator's business; the vectors are checked
        # against torch's by tests/memories/test_embedding_providers.py.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(transformer), example, temporary, input_names=list(INPUTS), output_names=[OUTPUT],
                dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )  # fmt: skip
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


class OnnxEncoder:
    """Texts to normalised vectors with the exported transformer (``threads`` intra-op threads)."""

    def __init__(self, model_dir: Path, cache_dir: Path, *, threads: int):
        import onnxruntime
        from tokenizers import Tokenizer

        self.max_seq_length = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json carries its own truncation and fixed padding; the model's are these.
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The arena keeps its peak: one batch of 32 long texts left a worker at 694 MB for good
        # (247 MB without it), for a speed difference within the noise (3.29 vs 3.25 ms).
        options.enable_cpu_mem_arena = False
        self.path = exported_path(model_dir, cache_dir)
        self._session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        """Unit vectors (float32, one row per text) and whether each text was cut."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        vectors = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return vectors.astype(np.float32), [bool(e.overflowing) for e in encodings]
