"""The language a management command writes in: the operator's, read from the environment the way every
gettext program reads it (docs/i18n.md).

A command has no request, so Django would leave it in LANGUAGE_CODE. An operator who reads Arabic sets a
locale (`LANG=ar_YE.UTF-8`) or `LANGUAGE=ar`, as for `ls` or `git`; the project's commands follow it. The
variables are read in GNU gettext's order: LANGUAGE (a colon-separated list, tried in order), then the
locale of messages (LC_ALL, else LC_MESSAGES, else LANG). The first that names a language of LANGUAGES wins;
none (unset, `C`, `POSIX`, a language the project does not ship) means LANGUAGE_CODE.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import translation

# What a test or a wrapper script sets to choose the language, in the order they are read.
LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def _supported(locale_name: str) -> str | None:
    """`ar_YE.UTF-8@latin` -> `ar`; None for C, POSIX and languages not in LANGUAGES."""
    name = locale_name.split(".")[0].split("@")[0].strip()
    if not name or name.upper() in ("C", "POSIX"):
        return None
    try:
        return translation.get_supported_language_variant(translation.to_language(name))
    except LookupError:
        return None


def command_language(*, environ=None) -> str:
    """The language a command run from this environment writes in."""
    environ = os.environ if environ is None else environ
    candidates = environ.get("LANGUAGE", "").split(":")
    candidates.append(environ.get("LC_ALL") or environ.get("LC_MESSAGES") or environ.get("LANG") or "")
    return next((found for name in candidates if (found := _supported(name))), settings.LANGUAGE_CODE)


class LocalizedCommand(BaseCommand):
    """A command whose output and errors are written in `command_language()` (argparse's usage and help
    stay English: they are read by whoever writes the cron line)."""

    def execute(self, *args, **options):
        with translation.override(command_language()):
            return super().execute(*args, **options)
