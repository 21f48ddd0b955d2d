from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from modules.models import ModuleChange
from modules.selectors import module_config, module_enabled

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = StringIO()
    call_command("modules", *args, stdout=out)
    return out.getvalue()


def test_list_shows_code_version_enabled_requires_and_health():
    lines = _call("list").splitlines()

    assert lines[0].split() == ["code", "version", "enabled", "requires", "health"]
    assert next(line for line in lines if line.startswith("stripe")).split() == ["stripe", "1.0.0", "yes",
                                                                                  "invoicing", "ok"]
    assert any(line.startswith("platform (core)") for line in lines)


@pytest.mark.django_db(transaction=True)  # health is read in threads of its own, which see committed rows
def test_disable_names_the_cascade_and_list_shows_it_without_health():
    assert _call("disable", "invoicing") == \
        "disabled: stripe, reports, paypal, manual, lemonsqueezy, dunning, invoicing\n"
    line = next(line for line in _call("list").splitlines() if line.startswith("dunning"))

    assert line.split() == ["dunning", "1.0.0", "no", "invoicing", "-"]
    assert ModuleChange.objects.get(code="dunning").actor_label == "system:modules-command"


def test_enable_names_the_requirements_it_enabled():
    _call("disable", "invoicing")

    assert _call("enable", "dunning") == "enabled: invoicing, dunning\n"
    assert module_enabled(code="dunning") and not module_enabled(code="stripe")
    assert _call("enable", "dunning") == "dunning was already enabled; nothing changed.\n"


def test_config_sets_validated_values():
    assert _call("config", "invoicing", "lag_degraded_minutes=90") == "invoicing: lag_degraded_minutes=90\n"
    assert module_config(code="invoicing") == {"lag_degraded_minutes": 90}


@pytest.mark.parametrize(("args", "message"), [
    (("disable", "catalog"), "is a core module and cannot be disabled"),
    (("enable", "ghost"), "There is no module 'ghost'"),
    (("config", "invoicing", "lag_degraded_minutes=soon"), "lag_degraded_minutes must be a whole number."),
    (("config", "invoicing", "lag_degraded_minutes=0"), "lag_degraded_minutes must be at least 1."),
    (("config", "invoicing", "colour=red"), "colour is not a setting of invoicing"),
    (("config", "invoicing", "lag_degraded_minutes"), "'lag_degraded_minutes' is not key=value."),
    (("config", "invoicing"), "Name at least one key=value."),
])
def test_bad_input_exits_with_one_clear_line_and_changes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        _call(*args)
    assert not ModuleChange.objects.exists()
