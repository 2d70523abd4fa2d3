"""Free-form JSON values (``metadata``, ``sessionMetrics``, the query's metadata filter,
an import line's metadata): the one rule for what the service accepts.

A value is accepted when PostgreSQL can store it as ``jsonb`` and Python can compute with
it: no NUL character and no lone surrogate in any key or string (``jsonb`` rejects both,
which used to surface as a 500), finite numbers only (``1e400`` parses as infinity),
integers that fit a double, nesting at most ``MAX_DEPTH`` levels, and a compact UTF-8
serialization of at most ``settings.ANIMA_METADATA_MAX_BYTES`` (64 KB by default). The
walk is iterative, so a deep value cannot exhaust the stack here either.

``json_loads`` is the parser for request bodies and import lines: it refuses the
``NaN``/``Infinity`` literals and turns nesting too deep for Python's parser into a
``ValueError`` instead of a ``RecursionError``; ``non_finite_path`` names where such a
literal is. ``text_problem`` is the rule for one string (an import line's content, tags…).
"""

import json
import math

from django.conf import settings

MAX_DEPTH = 32


class JsonValueError(ValueError):
    """Why a value was refused; ``path`` locates it (``a.b[2]``), empty for the value itself."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store ``text`` (``text`` or ``jsonb``), or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def _number_problem(number: int | float) -> str | None:
    if isinstance(number, float):
        return None if math.isfinite(number) else "is not a finite number"
    try:
        float(number)
    except OverflowError:
        return "is an integer too large for a double"
    return None


def _child_path(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def check_json_value(value, *, max_bytes: int | None = None) -> None:
    """Raise :class:`JsonValueError` unless ``value`` (as parsed from JSON) may be stored."""
    stack = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise JsonValueError(f"is nested deeper than {MAX_DEPTH} levels", path)
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise JsonValueError("has a key that is not a string", path)
                    problem = text_problem(key)
                    if problem:
                        raise JsonValueError(f"a key {problem}", path)
                    stack.append((child, depth + 1, _child_path(path, key)))
            else:
                stack.extend((child, depth + 1, _child_path(path, index)) for index, child in enumerate(item))
        elif isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise JsonValueError(problem, path)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, float)):
            problem = _number_problem(item)
            if problem:
                raise JsonValueError(problem, path)
        else:
            raise JsonValueError(f"is not a JSON value ({type(item).__name__})", path)
    limit = settings.ANIMA_METADATA_MAX_BYTES if max_bytes is None else max_bytes
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > limit:
        raise JsonValueError(f"is {size} bytes as JSON; at most {limit} are accepted (ANIMA_METADATA_MAX_BYTES)")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def json_loads(text: str | bytes):
    """``json.loads`` without NaN/Infinity literals; too-deep nesting is a ``ValueError``."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def non_finite_path(text: str | bytes) -> str | None:
    """Where ``text`` holds a NaN or ±Infinity (a literal, or a number such as ``1e400``), as
    ``a.b[2]``, to name the field ``json_loads`` refused; None when nowhere or unparsable."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and _number_problem(item):
            return path
        if isinstance(item, dict):
            stack.extend((child, _child_path(path, key)) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, _child_path(path, index)) for index, child in enumerate(item))
    return None
