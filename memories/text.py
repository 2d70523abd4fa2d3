"""Content fingerprints: the exact hash (duplicates) and the normalised hash (same text
up to case, Unicode form, punctuation and whitespace)."""

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def normalize_content(content: str) -> str:
    """NFKC, case-folded, every punctuation character a space, whitespace runs collapsed."""
    folded = unicodedata.normalize("NFKC", content).casefold()
    spaced = "".join(" " if unicodedata.category(char).startswith("P") else char for char in folded)
    return _SPACES.sub(" ", spaced).strip()


def normalized_hash(content: str) -> str:
    return hashlib.sha256(normalize_content(content).encode("utf-8")).hexdigest()
