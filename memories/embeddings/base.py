"""The provider interface every embedding backend implements."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class EmbeddingError(Exception):
    """The provider could not embed (unreachable, timed out, bad answer). Nothing is written."""


@dataclass(frozen=True)
class Embedding:
    vector: np.ndarray  # float32, shape (dimensions,)
    truncated: bool  # the model saw only the beginning of the text


class EmbeddingProvider(ABC):
    #: ``local`` or ``openai``: reported as ``meta.embeddingProvider``.
    name: str
    #: Identifies the embedding space; stored per row as ``embedding_model``.
    model_id: str
    dimensions: int

    @abstractmethod
    def embed_many(self, texts: list[str]) -> list[Embedding]:
        """Embed texts in one batch, in order. Raises :class:`EmbeddingError`."""

    def check_ready(self) -> None:
        """Raise :class:`EmbeddingError` when the provider cannot embed now."""
        self.embed_many(["ready"])

    def prepare(self) -> None:
        """One-time work before processes start using the provider (``manage.py serve`` calls
        it before gunicorn starts its workers); nothing by default."""
