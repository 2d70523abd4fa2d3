"""An OpenAI-compatible ``/v1/embeddings`` provider (OpenAI, Ollama, vLLM, TEI, LM Studio).

Timeout per attempt, ``retries`` more attempts with exponential backoff on connection
errors, timeouts, 429 and 5xx; anything else fails at once. Texts longer than
``max_input_chars`` (``ANIMA_OPENAI_MAX_INPUT_CHARS``; OpenAI refuses inputs over ~8k
tokens) are cut to their beginning and flagged ``truncated``; a server that cuts shorter
input itself does not say so.
"""

import time

import httpx
import numpy as np

from memories.embeddings.base import Embedding, EmbeddingError, EmbeddingProvider

_RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class OpenAIProvider(EmbeddingProvider):
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model_id: str,
        dimensions: int,
        timeout: float,
        retries: int,
        send_dimensions: bool,
        max_input_chars: int = 24_000,
        backoff_seconds: float = 0.2,
    ):
        self.model_id = model_id
        self.dimensions = dimensions
        self._url = base_url.rstrip("/") + "/embeddings"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._retries = retries
        self._send_dimensions = send_dimensions
        self._backoff = backoff_seconds
        self._max_chars = max_input_chars
        self._client = httpx.Client(timeout=timeout)

    def embed_many(self, texts: list[str]) -> list[Embedding]:
        payload = {"model": self.model_id, "input": [text[: self._max_chars] for text in texts], "encoding_format": "float"}
        if self._send_dimensions:
            payload["dimensions"] = self.dimensions
        body = self._post(payload)
        try:
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = [np.asarray(row["embedding"], dtype=np.float32) for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"malformed answer from {self._url}: {exc!r}") from None
        if len(vectors) != len(texts) or any(v.shape != (self.dimensions,) for v in vectors):
            raise EmbeddingError(f"{self._url} answered {len(vectors)} vectors of the wrong count or dimension")
        if any(not np.isfinite(vector).all() or not vector.any() for vector in vectors):
            raise EmbeddingError(f"{self._url} answered a vector with non-finite values or of zero length")
        return [
            Embedding(vector=_normalised(vector), truncated=len(text) > self._max_chars)
            for vector, text in zip(vectors, texts)
        ]

    def _post(self, payload: dict) -> dict:
        last_error = ""
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(self._url, json=payload, headers=self._headers)
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}"
                continue
            if response.status_code in _RETRYABLE_STATUS:
                last_error = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise EmbeddingError(f"{self._url} answered HTTP {response.status_code}")
            try:
                return response.json()
            except ValueError:
                raise EmbeddingError(f"{self._url} answered something that is not JSON") from None
        raise EmbeddingError(f"{self._url} failed after {self._retries + 1} attempts: {last_error}")


def _normalised(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
