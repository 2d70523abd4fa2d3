"""The request-body parser: DRF's JSON parser with the service's one JSON rule for
nesting (``anima_site.json_values.json_loads``): a body nested too deeply for Python's
parser is a 400 ``VALIDATION_ERROR``, not a ``RecursionError`` escaping as a 500."""

import codecs

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import get_encoding

from anima_site.json_values import json_loads


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            return json_loads(codecs.getreader(encoding)(stream).read())
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise ParseError(f"JSON parse error - {exc}") from None
