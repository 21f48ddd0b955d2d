import pytest
from django.db import transaction

from billing_project.tests.threads import race
from core.audit import Actor
from core.exceptions import InvalidOperation
from modules.models import ModuleChange, ModuleChangeKind, ModuleState
from modules.selectors import module_cascade, module_config, module_enabled, modules_enabled_codes
from modules.services import (
    ModuleConfigInvalid,
    ModuleUnknown,
    module_configure,
    module_disable,
    module_enable,
    module_events_subscribe,
    module_events_unsubscribe,
)
from modules.tests.support import module_replaced

ACTOR = Actor.system("test")


@pytest.mark.django_db
def test_every_module_starts_enabled_and_disabling_one_disables_what_requires_it():
    assert {"invoicing", "dunning", "stripe", "manual", "credits", "usage", "live"} <= modules_enabled_codes()

    switched = module_disable(code="invoicing", actor=ACTOR, reason="audit")

    assert switched[-1] == "invoicing"
    assert set(switched) == {"invoicing", "dunning", "stripe", "paypal", "lemonsqueezy", "manual", "reports"}
    assert not module_enabled(code="stripe") and module_enabled(code="credits")
    change = ModuleChange.objects.get(code="stripe")
    assert (change.kind, change.requested_code, change.actor_label, change.reason) == (
        ModuleChangeKind.DISABLED, "invoicing", "system:test", "audit")


@pytest.mark.django_db
def test_enabling_one_enables_what_it_requires_first():
    module_disable(code="invoicing", actor=ACTOR)

    assert module_cascade(code="stripe", enable=True) == ["invoicing"]
    assert module_enable(code="stripe", actor=ACTOR) == ["invoicing", "stripe"]
    assert module_enabled(code="stripe") and not module_enabled(code="dunning")


@pytest.mark.django_db
def test_core_modules_cannot_be_disabled_and_unknown_codes_are_refused():
    with pytest.raises(InvalidOperation, match="core module"):
        module_disable(code="subscriptions", actor=ACTOR)
    with pytest.raises(ModuleUnknown):
        module_enable(code="ghost", actor=ACTOR)
    assert ModuleState.objects.count() == 0


@pytest.mark.django_db
def test_switching_to_the_state_a_module_is_in_changes_nothing():
    assert module_enable(code="credits", actor=ACTOR) == []
    assert not ModuleChange.objects.exists()


@pytest.mark.django_db
def test_configuration_is_validated_against_the_schema_and_kept():
    with pytest.raises(ModuleConfigInvalid) as refused:
        module_configure(code="invoicing", changes={"lag_degraded_minutes": "0"}, actor=ACTOR)
    assert refused.value.extra["fields"] == {"lag_degraded_minutes": ["must be at least 1."]}
    with pytest.raises(ModuleConfigInvalid, match="is not a setting of invoicing"):
        module_configure(code="invoicing", changes={"colour": "red"}, actor=ACTOR)

    config = module_configure(code="invoicing", changes={"lag_degraded_minutes": "15"}, actor=ACTOR)

    assert config == module_config(code="invoicing") == {"lag_degraded_minutes": 15}


@pytest.mark.django_db
def test_events_reach_subscribers_after_commit_only(django_capture_on_commit_callbacks):
    heard = []
    module_events_subscribe(subscriber=heard.append)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            module_disable(code="usage", actor=ACTOR)
            raise RuntimeError("rolled back")
        with django_capture_on_commit_callbacks(execute=True):
            module_disable(code="usage", actor=ACTOR)
            assert heard == []  # not before the commit
    finally:
        module_events_unsubscribe(subscriber=heard.append)

    assert [(e.code, e.kind) for e in heard] == [("usage", "disabled")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_toggles_run_each_hook_exactly_once_per_change():
    calls = []
    with module_replaced("usage", on_enable=lambda: calls.append("enable"),
                         on_disable=lambda: calls.append("disable")):
        disabling = race([lambda: module_disable(code="usage", actor=ACTOR)] * 6, join_timeout=60)
        enabling = race([lambda: module_enable(code="usage", actor=ACTOR)] * 6, join_timeout=60)

    assert disabling.errors == enabling.errors == []
    assert calls == ["disable", "enable"]
    assert sorted(len(r) for r in disabling.results) == [0] * 5 + [1]
    assert ModuleChange.objects.filter(code="usage").count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_opposite_switches_of_related_modules_never_deadlock_and_leave_a_consistent_state():
    outcome = race([lambda: module_disable(code="invoicing", actor=ACTOR),
                    lambda: module_enable(code="stripe", actor=ACTOR)] * 3, join_timeout=60)

    enabled = modules_enabled_codes()
    assert outcome.errors == []
    assert "stripe" not in enabled or "invoicing" in enabled
