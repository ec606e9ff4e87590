from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.core.errors import NulCharacterRejected
from apps.core.pci import reject_card_data


class JSONObjectParser(JSONParser):
    """API.md: a body that is not a JSON object is a 400, whatever JSON it is; card data anywhere in
    any body of any endpoint is a 400 `raw_card_data_rejected` before a view sees it."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json.loads recurses per nesting level: a body of 100k brackets would otherwise be a 500.
            raise ParseError("JSON parse error - the body is nested too deeply.")
        if not isinstance(data, dict):
            raise ParseError("The request body must be a JSON object.")
        _refuse_text_postgresql_cannot_hold(data)
        reject_card_data(data)
        return data


def _refuse_text_postgresql_cannot_hold(data: object) -> None:
    """Every string of the body, key or value, at any depth, in one pass: JSON may escape a lone
    surrogate (\\ud800), which no UTF-8 text holds, or U+0000, which no PostgreSQL text or JSONB
    holds. Refused here, either would otherwise fail later, echoed in an error message or written
    to PostgreSQL, as a 500."""
    pending = [data]
    while pending:  # by hand, not recursively: the body may be nested as deep as json.loads allows
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ParseError(
                    "JSON parse error - the body contains invalid Unicode (an unpaired surrogate)."
                )
            if "\x00" in item:
                raise NulCharacterRejected()
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
