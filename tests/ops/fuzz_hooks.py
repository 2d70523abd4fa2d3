"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.ops.fuzz_hooks``): every generated JSON
body and query string gets one value replaced by an edge value a careless or hostile
client sends — NUL, a lone surrogate, non-finite and oversized numbers, nesting past the
limit, an oversized object. The service must answer each with a 4xx, never a 5xx.

(Non-finite numbers cannot be produced here: the client refuses to serialize them;
``tests/ops/test_hostile_input.py`` sends ``1e400``, ``NaN`` and ``Infinity`` as text.)
"""

import schemathesis
from hypothesis import strategies as st


def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


EDGE_VALUES = [
    "\x00",
    "a\x00b",
    "\ud800",
    {"\x00": 1},
    {"\udfff": "x"},
    10**400,
    -(10**400),
    1.7976931348623157e308,
    -(2**63),
    2**64,
    _nested(40),
    _nested(300),  # deeper makes the client's own recursion fail; test_hostile_input sends 100,000
    {"blob": "x" * 70_000},
    [[[[[]]]]],
    "",
    " ",
    "x" * 60_000,
    {},
    [],
    None,
    True,
]

#: Query-string values (text only: a URL carries no JSON types).
EDGE_QUERY_VALUES = ["\x00", "a\x00b", "", " ", "x" * 5000, "-1", "1e400", "NaN", "9" * 400, "true\x00"]


def _replace_one(mapping: dict, values: list):
    if not mapping:
        return st.just(mapping)
    return st.tuples(st.sampled_from(sorted(mapping)), st.sampled_from(values)).map(
        lambda pair: {**mapping, pair[0]: pair[1]}
    )


@schemathesis.hook
def flatmap_body(context, body):
    if isinstance(body, dict):
        nested = {key: value for key, value in body.items() if isinstance(value, dict)}
        if nested:  # also inside an object field such as metadata or sessionMetrics
            key = sorted(nested)[0]
            return st.one_of(
                _replace_one(body, EDGE_VALUES),
                _replace_one(nested[key], EDGE_VALUES).map(lambda inner: {**body, key: inner}),
            )
        return _replace_one(body, EDGE_VALUES)
    return st.sampled_from(EDGE_VALUES)


@schemathesis.hook
def flatmap_query(context, query):
    if isinstance(query, dict) and query:
        return _replace_one(query, EDGE_QUERY_VALUES)
    return st.just(query)
