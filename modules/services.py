"""Switching modules on and off and configuring them (docs/modules.md).

A switch locks the state rows of every module it may touch, in primary-key order, so concurrent
switches serialise; each module whose state really changes gets its hook run once, inside the
transaction and under the lock, and an audit row. Subscribers hear of it only after the commit.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import InvalidOperation
from modules.config import ConfigError, config_validate
from modules.graph import dependents_closure, graph_order, requirements_closure
from modules.models import ModuleChange, ModuleChangeKind, ModuleState
from modules.registry import module_definitions
from modules.selectors import modules_state_forget

logger = logging.getLogger(__name__)


class ModuleUnknown(InvalidOperation):
    http_status = 404
    code = "module_unknown"


class ModuleConfigInvalid(InvalidOperation):
    code = "module_config_invalid"


@dataclass(frozen=True)
class ModuleEvent:
    # The module whose state changed, what happened to it, and the module the operator asked to change.
    code: str
    kind: str
    requested_code: str


ModuleSubscriber = Callable[[ModuleEvent], None]
_subscribers: list[ModuleSubscriber] = []


def module_events_subscribe(*, subscriber: ModuleSubscriber) -> None:
    """Call `subscriber` in this process for every committed switch or configuration change."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def module_events_unsubscribe(*, subscriber: ModuleSubscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def _events_publish(events: list[ModuleEvent]) -> None:
    modules_state_forget()
    for event in events:
        for subscriber in list(_subscribers):
            try:
                subscriber(event)
            except Exception:
                # The change is committed; one subscriber's failure must not hide it from the others.
                logger.exception("Module event subscriber %r failed on %s", subscriber, event)


def _rows_locked(codes: set[str]) -> dict[str, ModuleState]:
    """The state rows of `codes`, created on first use (on, empty config), locked in primary-key order."""
    ModuleState.objects.bulk_create([ModuleState(code=code) for code in sorted(codes)], ignore_conflicts=True)
    return {row.code: row for row in ModuleState.objects.select_for_update().filter(code__in=codes).order_by("pk")}


def _definition_or_refuse(code: str):
    definition = module_definitions().get(code)
    if definition is None:
        raise ModuleUnknown(_("There is no module %(module)r; `manage.py modules list` names them.") % {"module": code},
                            extra={"fields": {"code": [_("Unknown module %(module)r.") % {"module": code}]}})
    return definition


def _switch(*, code: str, enable: bool, actor: Actor, reason: str) -> list[str]:
    definitions = module_definitions()
    definition = _definition_or_refuse(code)
    if not enable and definition.is_core:
        raise InvalidOperation(_("%(module)s is a core module and cannot be disabled.") % {"module": definition.name},
                               code="module_core")
    affected = (requirements_closure if enable else dependents_closure)(definitions=definitions, code=code)
    order = graph_order(definitions=definitions, codes=affected)
    kind = ModuleChangeKind.ENABLED if enable else ModuleChangeKind.DISABLED
    events: list[ModuleEvent] = []
    with transaction.atomic():
        rows = _rows_locked(affected)
        for current in order if enable else reversed(order):
            row = rows[current]
            if row.enabled == enable:
                continue
            row.enabled = enable
            row.save(update_fields=["enabled", "updated_at"])
            hook = definitions[current].on_enable if enable else definitions[current].on_disable
            if hook is not None:
                hook()
            change = ModuleChange(code=current, kind=kind, requested_code=code, reason=reason)
            change.stamp(actor)
            change.save()
            events.append(ModuleEvent(code=current, kind=kind, requested_code=code))
        modules_state_forget()
        transaction.on_commit(partial(_events_publish, events))
    return [event.code for event in events]


def module_enable(*, code: str, actor: Actor, reason: str = "") -> list[str]:
    """Enable `code` and every module it requires; the codes actually switched on, requirements first."""
    return _switch(code=code, enable=True, actor=actor, reason=reason)


def module_disable(*, code: str, actor: Actor, reason: str = "") -> list[str]:
    """Disable `code` and every module that requires it; the codes actually switched off, dependents
    first. Core modules are refused."""
    return _switch(code=code, enable=False, actor=actor, reason=reason)


def module_configure(*, code: str, changes: Mapping[str, object], actor: Actor, reason: str = "") -> dict:
    """Set configuration keys of `code` (raw values, checked against its schema); the whole new config."""
    definition = _definition_or_refuse(code)
    with transaction.atomic():
        row = _rows_locked({code})[code]
        try:
            config = config_validate(definition=definition, current=row.config, changes=changes)
        except ConfigError as error:
            # Translators: a configuration key (lag_degraded_minutes) then why its value is refused
            # ("must be at least 1.").
            raise ModuleConfigInvalid(_("%(setting)s %(reason)s") % {"setting": error.field, "reason": error.reason},
                                      extra={"fields": {error.field: [error.reason]}}) from error
        row.config = config
        row.save(update_fields=["config", "updated_at"])
        change = ModuleChange(code=code, kind=ModuleChangeKind.CONFIGURED, requested_code=code, config=config,
                              reason=reason)
        change.stamp(actor)
        change.save()
        transaction.on_commit(partial(_events_publish, [ModuleEvent(code=code, kind=ModuleChangeKind.CONFIGURED,
                                                                    requested_code=code)]))
    return config
