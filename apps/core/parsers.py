import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.core.errors import NulCharacterRejected


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
        if _holds_nul(data):
            # Nor can PostgreSQL text or JSONB hold U+0000, in a field's value or in metadata's keys.
            raise NulCharacterRejected()
        return data


def _holds_nul(data: object) -> bool:
    """Whether any string of the parsed body, key or value, at any depth, holds U+0000."""
    pending = [data]
    while pending:  # by hand, not recursively: the body may be nested as deep as json.loads allows
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
