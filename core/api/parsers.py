"""Body parsers of the API: DRF's, refusing what the database cannot store (core.safe_input).

A string with NUL or an unpaired surrogate, NaN or Infinity, or JSON nested deeper than
MAX_JSON_DEPTH is a 400 naming the field, before any view or serializer sees the body. Body size is
limited before parsing, by core.middleware.RequestGuardMiddleware.
"""

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from core.safe_input import UnsafeInput, json_loads_checked, text_problem


def _field_error(path: tuple[str, ...], message: str) -> dict:
    """DRF's nested error shape for the value at `path` ({"a": {"0": {"b": [message]}}})."""
    if not path:
        return {"non_field_errors": [message]}
    error: dict | list = [message]
    for key in reversed(path):
        error = {key: error}
    return error


class ApiJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads_checked(stream.read().decode(encoding))
        except UnsafeInput as exc:
            raise ValidationError(_field_error(exc.path, exc.message)) from None
        except ValueError as exc:  # the decoder's errors, and bytes that are not in the charset
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None


def _check_fields(data):
    for key, values in data.lists():
        for value in (key, *values):
            if isinstance(value, str) and (problem := text_problem(value)):
                raise ValidationError(_field_error((key,), problem))
    return data


class ApiFormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _check_fields(super().parse(stream, media_type, parser_context))


class ApiMultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _check_fields(result.data)
        return result
