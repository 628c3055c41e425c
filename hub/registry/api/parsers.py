"""Request body parsers of the REST API. They refuse, as a 400 with a message, what would otherwise fail far
from where it came in: JSON the hub cannot keep (NaN, numbers beyond 64 bits, nesting deeper than the
library's limit, a lone surrogate such as "\\ud800", which no UTF-8 text can hold) and control characters in
form fields (PostgreSQL refuses NUL in text). How large a body may be is Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
checked against the declared length before anything is read (hub.http_errors answers 413)."""

import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from adapters_core.configuration.values import load_json
from hub.http_errors import TEXT_CONTROL_CHARACTER, control_character_free, control_character_in

LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            value = load_json(stream.read())
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"The JSON body cannot be used: {exc}.") from None
        refuse_lone_surrogates(value)
        return value


def refuse_lone_surrogates(value) -> None:
    """Raise ParseError if a key or string of the parsed JSON `value` holds a lone surrogate ("\\ud800" in the
    JSON text, half of an escaped pair): no UTF-8 text holds one, so it would fail only when stored or
    answered. The error names the top-level field it is in, as `field` like the API's other errors."""
    top_level = value.items() if isinstance(value, dict) else [(None, value)]
    for field, item in top_level:
        found = lone_surrogate_in(field) if field is not None else None
        if found:
            raise ParseError(
                f"The JSON body cannot be used: a field name holds a lone surrogate ({found}), which is not a "
                "character. Send the field names the API documents."
            )
        found = lone_surrogate_in(item)
        if found and field is None:
            raise ParseError(
                f"The JSON body cannot be used: it holds a lone surrogate ({found}), which is not a character; "
                "send text as it is (UTF-8), not half of a \\u escaped pair."
            )
        if found:
            raise ParseError(
                {
                    "detail": f"{field} holds a lone surrogate ({found}), which is not a character; send text as "
                    "it is (UTF-8), not half of a \\u escaped pair.",
                    "field": field,
                }
            )


def lone_surrogate_in(value) -> str | None:
    """The first lone surrogate in a key or string of `value` (parsed JSON), as "U+D800"; None if there is none."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
        elif isinstance(current, str):
            match = LONE_SURROGATE.search(current)
            if match:
                return f"U+{ord(match.group()):04X}"
    return None


def check_form_fields(data) -> None:
    """Raise ParseError if a form field's name or value holds a control character other than tab or a line
    break."""
    for key, values in data.lists():
        for text in (key, *values):
            found = control_character_in(text, TEXT_CONTROL_CHARACTER)
            if found:
                raise ParseError(
                    f"The form field {control_character_free(key)!r} contains the control character {found}; "
                    "remove it."
                )


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        check_form_fields(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """Django's multipart parser (which drops non-printable characters from file names), with the form
    fields checked."""

    def parse(self, stream, media_type=None, parser_context=None):
        data_and_files = super().parse(stream, media_type, parser_context)
        check_form_fields(data_and_files.data)
        return data_and_files
