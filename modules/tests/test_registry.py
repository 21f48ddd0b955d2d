"""The registry is loaded from each app's `modules.py` at startup and a broken graph stops the process
with one clear error."""

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from modules import modules as kernel_modules
from modules.definitions import ModuleDefinition
from modules.registry import module_definitions, registry_load
from modules.tests.support import module, registry_swapped


def test_every_app_declares_its_modules_next_to_its_code():
    definitions = module_definitions()

    assert {"platform", "catalog", "subscriptions", "credits", "usage", "invoicing", "dunning", "stripe", "manual",
            "live"} <= set(definitions)
    assert {code for code, d in definitions.items() if d.is_core} == {"platform", "catalog", "subscriptions"}
    assert all(isinstance(d, ModuleDefinition) and d.version for d in definitions.values())


@pytest.mark.parametrize(("declared", "message"), [
    ([module("extra", "nowhere")], "'extra' requires 'nowhere', which no app declares"),
    ([module("extra", "credits", core=True)], "Core module 'extra' requires 'credits', which is optional"),
    ([module("extra", "later"), module("later", "extra")], "cycle: extra -> later -> extra"),
    ([module("credits")], "'credits' is declared twice"),
])
def test_a_broken_graph_stops_startup_with_a_clear_error(monkeypatch, declared, message):
    with monkeypatch.context() as patched:
        patched.setattr(kernel_modules, "MODULES", [*kernel_modules.MODULES, *declared])
        with registry_swapped(dict(module_definitions())), pytest.raises(ImproperlyConfigured, match=message):
            apps.get_app_config("modules").ready()
    registry_load()
    assert "extra" not in module_definitions() and "platform" in module_definitions()
