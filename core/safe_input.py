"""What PostgreSQL can store and Python can read back, checked the same way at every door.

Each check answers a sentence for the client (or None when the value is fine), so the API's fields,
filters, parsers and middleware, the services and the management commands all refuse the same
values with the same words instead of letting the database refuse them with a 500:

- text: PostgreSQL's text and jsonb refuse NUL (U+0000), and an unpaired surrogate (U+D800-U+DFFF,
  which JSON's \\ud800 escapes can produce) cannot be encoded as UTF-8 at all;
- instants: a timestamptz literal may carry an offset of at most 15:59 hours, and psycopg cannot load
  a stored value before year 1 or after 9999 (a year-1 date with a positive offset is 1 BC in UTC).
  Accepted instants stay a day inside Python's range, so any time zone can render them;
- integers: the ranges of PostgreSQL's bigint, integer and smallint columns;
- JSON documents: nesting depth (a recursive walk of a deep document exhausts Python's stack) and
  non-finite numbers (JSON has no NaN or Infinity; jsonb refuses them).
"""

import json
import math
import re
from datetime import UTC, datetime, timedelta

from django.utils.translation import gettext, gettext_lazy

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
INTEGER_MAX = 2**31 - 1
SMALLINT_MAX = 2**15 - 1

DATETIME_MIN = datetime(1, 1, 2, tzinfo=UTC)
DATETIME_MAX = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
# PostgreSQL refuses "time zone displacement out of range" from 16:00 on.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59, seconds=59)

MAX_JSON_DEPTH = 32

_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")

TEXT_PROBLEM = gettext_lazy("Text may not contain NUL characters or unpaired UTF-16 surrogates.")
KEY_PROBLEM = gettext_lazy("Object keys may not contain NUL characters or unpaired UTF-16 surrogates.")
DATETIME_RANGE_PROBLEM = gettext_lazy("Give a date between 0001-01-02 and 9999-12-30 (UTC).")
OFFSET_PROBLEM = gettext_lazy("The UTC offset must be between -15:59 and +15:59.")


class UnsafeInput(ValueError):
    """A value the database cannot store; `path` locates it inside a document (keys and list indexes)."""

    def __init__(self, message: str, path: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.path = path


def text_problem(value: str) -> str | None:
    return str(TEXT_PROBLEM) if _UNSTORABLE_CHARACTERS.search(value) else None


def json_storable(document):
    """`document` with every unstorable character (NUL, an unpaired surrogate) in its strings and keys
    replaced by U+FFFD: for what we write ourselves from what a client sent, such as an error answer naming
    the unknown field it posted, which jsonb would refuse with a 500."""
    if isinstance(document, str):
        return _UNSTORABLE_CHARACTERS.sub("\ufffd", document)
    if isinstance(document, dict):
        return {json_storable(key): json_storable(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [json_storable(value) for value in document]
    return document


def datetime_problem(value: datetime) -> str | None:
    """Why `value` cannot be stored and read back as a timestamptz, or None. Naive values are UTC."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return str(OFFSET_PROBLEM)
    try:
        moment = value.astimezone(UTC) if offset is not None else value.replace(tzinfo=UTC)
    except OverflowError:  # year 1 with a positive offset, or 9999 with a negative one
        return str(DATETIME_RANGE_PROBLEM)
    if not DATETIME_MIN <= moment <= DATETIME_MAX:
        return str(DATETIME_RANGE_PROBLEM)
    return None


def integer_problem(value: int, *, minimum: int = BIGINT_MIN, maximum: int = BIGINT_MAX) -> str | None:
    if not minimum <= value <= maximum:
        return (gettext("Give a whole number from %(minimum)s to %(maximum)s.")
                % {"minimum": minimum, "maximum": maximum})
    return None


def json_check(document, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise UnsafeInput for the first value of a parsed JSON document that cannot be stored: a string
    (or object key) with NUL or a lone surrogate, a non-finite number, or nesting beyond `max_depth`.
    Iterative, so a hostile document cannot exhaust the stack here."""
    pending: list[tuple[object, tuple[str, ...]]] = [(document, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                raise UnsafeInput(problem, path)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise UnsafeInput(gettext("Numbers must be finite (no NaN or Infinity)."), path)
        elif isinstance(value, dict | list):
            if len(path) >= max_depth:
                raise UnsafeInput(gettext("JSON may be nested at most %(depth)s levels deep.") % {"depth": max_depth},
                                  path)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and text_problem(key):
                    raise UnsafeInput(str(KEY_PROBLEM), path)
                pending.append((item, (*path, str(key))))


def _no_constants(name: str):
    raise UnsafeInput(gettext("Numbers must be finite (no NaN or Infinity)."))


def json_loads_checked(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH):
    """json.loads that refuses what `json_check` refuses; ValueError (UnsafeInput or the decoder's
    own) for anything it cannot accept."""
    try:
        document = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise UnsafeInput(f"JSON may be nested at most {max_depth} levels deep.") from None
    json_check(document, max_depth=max_depth)
    return document
