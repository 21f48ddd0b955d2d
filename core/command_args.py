"""Arguments of the management commands, parsed in `handle()` so that every bad value ends the
command with exit status 1 and one line (CommandError), never a traceback or argparse's usage text.

The billing clock (`--as-of`, `--since`) is limited to years 1970 to 2999: the engine adds billing
periods to it and the seeder subtracts months of history, which must stay inside Python's dates. Every
command reads an instant the same way (`parse_instant`): an ISO date-time, UTC when it has no offset,
and a bare date is that day's midnight UTC, so `billing run --as-of 2026-03-01` and
`seed --as-of 2026-03-01` name the same instant.
"""

from datetime import UTC, datetime, time

from django.core.management.base import CommandError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from core.safe_input import datetime_problem, text_problem

CLOCK_MIN = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_MAX = datetime(3000, 1, 1, tzinfo=UTC)


INSTANT_HELP = "ISO date or date-time; UTC if no offset, a bare date is midnight UTC"


def parse_instant(value: str | None, *, option: str) -> datetime:
    """An ISO date (midnight) or date-time; naive values are UTC. Empty is an error, not "now"."""
    text = (value or "").strip()
    moment = None
    if text and not text_problem(text):
        try:
            moment = parse_datetime(text)
            if moment is None and (day := parse_date(text)) is not None:
                moment = datetime.combine(day, time(0))
        except ValueError:  # well-formed but impossible, e.g. month 13
            moment = None
    if moment is None:
        raise CommandError(_("%(option)s takes an ISO date or date-time (2026-03-01 or 2026-03-01T09:00Z), not "
                             "%(value)r.") % {"option": option, "value": value})
    if problem := datetime_problem(moment):
        raise CommandError(f"{option} {value!r}: {problem}")
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not CLOCK_MIN <= moment < CLOCK_MAX:
        raise CommandError(_("%(option)s must be between %(minimum)s and %(maximum)s (UTC), not %(value)r.")
                           % {"option": option, "minimum": f"{CLOCK_MIN:%Y-%m-%d}", "maximum": f"{CLOCK_MAX:%Y-%m-%d}",
                              "value": value})
    return moment


def parse_optional_instant(value: str | None, *, option: str) -> datetime | None:
    """None when the option was not given (the caller's default applies); given, see `parse_instant`:
    `--as-of ""` is a mistake, not "now"."""
    return None if value is None else parse_instant(value, option=option)


def parse_as_of(value: str | None) -> datetime | None:
    """`--as-of`, the clock every command that moves it reads the same way."""
    return parse_optional_instant(value, option="--as-of")


def parse_whole_number(value: str | int | None, *, option: str, minimum: int, maximum: int) -> int:
    text = str(value if value is not None else "").strip()
    try:
        number = int(text)
    except ValueError:
        raise CommandError(_("%(option)s takes a whole number, not %(value)r.")
                           % {"option": option, "value": value}) from None
    if not minimum <= number <= maximum:
        raise CommandError(_("%(option)s must be between %(minimum)s and %(maximum)s, not %(number)s.")
                           % {"option": option, "minimum": minimum, "maximum": maximum, "number": number})
    return number


def parse_text(value: str, *, option: str) -> str:
    """A string that is looked up in the database: PostgreSQL refuses NUL in text."""
    if text_problem(value):
        raise CommandError(_("%(option)s may not contain NUL characters or unpaired surrogates.") % {"option": option})
    return value
