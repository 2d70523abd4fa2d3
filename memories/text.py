"""Content fingerprints: the exact hash (duplicates) and the normalised hash (same text
up to case, Unicode form, punctuation and whitespace)."""

import hashlib
import re
import unicodedata
from difflib import SequenceMatcher

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

#: Words that turn a statement into its opposite. "isn't" normalises to "isn t", hence "t".
NEGATIONS = frozenset(
    "no not never none nobody nothing nowhere neither nor without cannot t "
    "cant dont doesnt didnt isnt arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt aint".split()
)
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion first second third fourth fifth half twice once".split()
)
#: Normalised texts at least this alike, character by character, may be the same fact.
SAME_FACT_CHAR_RATIO = 0.9

def _changed_words(first: list[str], second: list[str]) -> list[str]:

    changed = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, first, second, autojunk=False).get_opcodes():
        if tag != "equal":
            changed.extend(first[i1:i2] + second[j1:j2])
    return changed

def same_fact(first: str, second: str) -> bool:
    """Whether two texts state the same fact closely enough to merge them.

    High embedding similarity does not mean the same fact ("allergic" / "not allergic"
    score 0.96). Two texts are merged only when equal after normalisation, or when they
    are ≥ 0.9 alike character by character (normalised), the words that differ contain
    no negation and no number, and they are not the same words reordered ("tabs over
    spaces" / "spaces over tabs"). When in doubt: not the same fact.
    """

    a, b = normalize_content(first), normalize_content(second)
    if a == b:
        return True
    if SequenceMatcher(None, a, b, autojunk=False).ratio() < SAME_FACT_CHAR_RATIO:
        return False
    words_a, words_b = a.split(), b.split()
    if sorted(words_a) == sorted(words_b):
        return False
    return not _opposing(_changed_words(words_a, words_b))


def _opposing(changed: list[str]) -> bool:
    """Whether the differing words hold a negation or a number (what can make one
    statement contradict the other)."""
    return any(word in NEGATIONS or word in NUMBER_WORDS or any(ch.isdigit() for ch in word) for word in changed)


def may_correct(older: str, newer: str) -> bool:
    """Whether ``newer`` may correct ``older``: not the same fact, and the words that
    differ hold a negation or a number ("Dana is allergic to peanuts." / "Dana is not
    allergic to peanuts."; "The meeting is at 3." / "The meeting is at 4."). Called on
    near-duplicates only (similarity ≥ the consolidation threshold): a suggestion for
    a person or an assistant to confirm, never applied on its own."""
    if same_fact(older, newer):
        return False
    return _opposing(_changed_words(normalize_content(older).split(), normalize_content(newer).split()))
