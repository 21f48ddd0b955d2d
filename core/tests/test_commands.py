"""The language a management command writes in: the operator's locale, read as gettext programs read it."""

import pytest
from django.core.management import CommandError, call_command

from core.commands import command_language


@pytest.mark.parametrize(("environ", "language"), [
    ({}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "POSIX"}, "en"),
    ({"LANG": "ar_YE.UTF-8"}, "ar"),
    ({"LANG": "ar_SA.UTF-8@latin"}, "ar"),
    ({"LANG": "fr_FR.UTF-8"}, "en"),  # a language the project does not ship: LANGUAGE_CODE
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "ar_YE.UTF-8"}, "ar"),  # the messages' locale over LANG
    ({"LC_MESSAGES": "ar_YE.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),  # LC_ALL over both
    ({"LANGUAGE": "ar", "LC_ALL": "en_US.UTF-8"}, "ar"),  # LANGUAGE first, as in GNU gettext
    ({"LANGUAGE": "fr:de:ar", "LANG": "en_US.UTF-8"}, "ar"),  # its list is tried in order
    ({"LANGUAGE": "fr", "LANG": "ar_YE.UTF-8"}, "ar"),  # then the locale
    ({"LANGUAGE": "", "LANG": "ar_YE.UTF-8"}, "ar"),
])
def test_the_operators_locale_chooses_the_language(environ, language):
    assert command_language(environ=environ) == language


def test_without_a_shipped_language_in_the_environment_commands_follow_language_code(settings):
    settings.LANGUAGE_CODE = "ar"
    assert command_language(environ={"LANG": "C.UTF-8"}) == "ar"


def test_a_commands_refusal_is_written_in_the_operators_language_too(monkeypatch):
    monkeypatch.setenv("LANG", "ar_YE.UTF-8")
    with pytest.raises(CommandError) as refused:
        call_command("billing", "preview", "--all", "--currency", "usd")

    assert "رمز ISO 4217 مثل USD" in refused.value.args[0] and "'usd'" in refused.value.args[0]
