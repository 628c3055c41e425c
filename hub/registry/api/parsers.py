"""Request body parsers of the REST API. They refuse, as a 400 with a message, what would otherwise fail far
from where it came in: JSON the hub cannot keep (NaN, numbers beyond 64 bits, nesting deeper than the
library's limit) and control characters in form fields (PostgreSQL refuses NUL in text)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from adapters_core.configuration.values import load_json
from hub.http_errors import TEXT_CONTROL_CHARACTER, control_character_free, control_character_in


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return load_json(stream.read())
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"The JSON body cannot be used: {exc}.") from None


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
