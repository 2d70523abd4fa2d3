"""The response renderer (orjson) writes what DRF's ``JSONRenderer`` writes."""

import decimal
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.utils.functional import lazy
from rest_framework import renderers
from rest_framework.exceptions import ErrorDetail
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from anima_site.renderers import JSONRenderer

lazy_text = lazy(lambda: "lazy text", str)


def drf(data, media_type=None) -> bytes:
    return renderers.JSONRenderer().render(data, media_type)


@pytest.mark.parametrize(
    "data",
    [
        {"success": True, "data": {"memories": [{"id": "a", "similarity": 0.8123, "tags": ["x"]}]}, "meta": {}},
        {"when": datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC), "day": date(2026, 1, 31)},
        {"offset": datetime(2026, 1, 31, tzinfo=timezone(timedelta(hours=2))), "naive": datetime(2026, 1, 31, 1, 2, 3)},
        {"id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "amount": decimal.Decimal("1.25")},
        {"error": ErrorDetail("This field is required.", code="required"), "lazy": lazy_text()},
        ReturnDict({"list": ReturnList([1, 2.5, None, True], serializer=None)}, serializer=None),
        {"unicode": "é — 漢字 🙂", "quotes": 'a "b" \\ c\n\t', "separators": "a\u2028b\u2029c"},
        {"floats": [0.1, 1e16, 1.0, 100.0, 5e-324, -2.5e300, 0.30000000000000004], "ints": [0, -1, 2**63 - 1]},
        {1: "int key", "nested": {"deep": [[[{"x": None}]]]}},
        {"tuple": (1, 2), "empty": {}, "none": None},
    ],
)
def test_the_body_is_byte_for_byte_drfs(data):
    assert JSONRenderer().render(data) == drf(data)


def test_an_integer_outside_64_bits_is_written_by_json():
    data = {"metadata": {"big": 2**70, "negative": -(2**64)}}
    assert JSONRenderer().render(data) == drf(data) == b'{"metadata":{"big":1180591620717411303424,"negative":-18446744073709551616}}'


def test_a_lone_surrogate_is_escaped_instead_of_failing():
    assert JSONRenderer().render({"\ud800": 1}) == b'{"\\ud800":1}'


def test_an_indent_asked_for_is_honoured():
    assert JSONRenderer().render({"a": [1]}, "application/json; indent=2") == drf({"a": [1]}, "application/json; indent=2")


def test_small_floats_are_the_same_number():
    body = JSONRenderer().render({"x": 7.463844525588227e-05, "y": -1.9576342616922264e-06})
    assert json.loads(body) == {"x": 7.463844525588227e-05, "y": -1.9576342616922264e-06}


def test_no_body_for_none():
    assert JSONRenderer().render(None) == b""
