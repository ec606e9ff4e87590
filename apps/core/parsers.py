import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONObjectParser(JSONParser):
    """API.md: a body that is not a JSON object is a 400, whatever JSON it is."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json.loads recurses per nesting level: a body of 100k brackets would otherwise be a 500.
            raise ParseError("JSON parse error - the body is nested too deeply.")
        if not isinstance(data, dict):
            raise ParseError("The request body must be a JSON object.")
        try:
            # JSON may escape a lone surrogate (\ud800) that no UTF-8 text can hold: refused here, it
            # would otherwise fail later, echoed in an error message or written to PostgreSQL, as a 500.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - the body contains invalid Unicode (an unpaired surrogate).")
        return data
