"""Reads of module state: which modules are on, their configuration, what a switch would cascade to.

Which modules are enabled is asked on every request (the doors), so each process keeps the answer for
MODULES_STATE_CACHE_SECONDS: a switch made in this process is seen at once (services forget the memo),
one made in another process within that many seconds.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from modules.definitions import ModuleDefinition
from modules.graph import dependents_closure, requirements_closure
from modules.models import ModuleState
from modules.registry import module_definition, module_definitions

# (monotonic expiry, enabled codes): replaced whole, so readers in other threads never see half of it.
_enabled_memo: tuple[float, frozenset[str]] | None = None


def modules_state_forget() -> None:
    """Drop this process's memo of enabled modules (after a switch, and at the start of each test)."""
    global _enabled_memo
    _enabled_memo = None


def modules_enabled_read() -> frozenset[str]:
    """Codes of the enabled modules, read from the database now: core ones always, others unless a row
    says disabled."""
    disabled = set(ModuleState.objects.filter(enabled=False).values_list("code", flat=True))
    return frozenset(code for code, definition in module_definitions().items()
                     if definition.is_core or code not in disabled)


def modules_enabled_codes() -> frozenset[str]:
    """`modules_enabled_read`, remembered by this process for MODULES_STATE_CACHE_SECONDS."""
    global _enabled_memo
    memo, now = _enabled_memo, time.monotonic()
    if memo is not None and memo[0] > now:
        return memo[1]
    enabled = modules_enabled_read()
    _enabled_memo = (now + settings.MODULES_STATE_CACHE_SECONDS, enabled)
    return enabled


def module_enabled(*, code: str) -> bool:
    return code in modules_enabled_codes()


def modules_disabled() -> list[ModuleDefinition]:
    """Definitions of the modules that are off (empty on the usual, everything-on path)."""
    enabled = modules_enabled_codes()
    return [d for code, d in module_definitions().items() if code not in enabled]


def module_config(*, code: str) -> dict:
    """The module's configuration: stored values over the schema's defaults."""
    definition = module_definition(code=code)
    stored = ModuleState.objects.filter(code=code).values_list("config", flat=True).first() or {}
    return {**definition.config_defaults, **{k: v for k, v in stored.items() if k in definition.config_defaults}}


def features_available() -> frozenset[str]:
    """Feature codes plans may list now: those of enabled modules."""
    enabled = modules_enabled_codes()
    return frozenset(f for code, d in module_definitions().items() if code in enabled for f in d.features)


def features_declared() -> dict[str, str]:
    """Every feature code any module declares, with the module that provides it."""
    return {feature: code for code, d in module_definitions().items() for feature in d.features}


def module_cascade(*, code: str, enable: bool) -> list[str]:
    """The other modules switching `code` on (its disabled requirements) or off (its enabled
    dependents) would switch too, by code: what a confirmation must name."""
    definitions = module_definitions()
    enabled = modules_enabled_codes()
    if enable:
        return sorted(c for c in requirements_closure(definitions=definitions, code=code) - {code} if c not in enabled)
    return sorted(c for c in dependents_closure(definitions=definitions, code=code) - {code} if c in enabled)


@dataclass(frozen=True)
class ModuleRow:
    definition: ModuleDefinition
    enabled: bool
    config: dict


def module_rows() -> list[ModuleRow]:
    """Every declared module with its state and configuration, by code (for `modules list` and the admin)."""
    stored = {row.code: row for row in ModuleState.objects.all()}
    enabled = modules_enabled_codes()
    rows = []
    for code, definition in sorted(module_definitions().items()):
        config = stored[code].config if code in stored else {}
        rows.append(ModuleRow(definition=definition, enabled=code in enabled,
                              config={**definition.config_defaults,
                                      **{k: v for k, v in config.items() if k in definition.config_defaults}}))
    return rows


def admin_models_hidden() -> frozenset[str]:
    """"app_label.modelname" of every admin entry a disabled module owns."""
    return frozenset(label for d in modules_disabled() for label in d.admin_models)


def dashboard_panels_hidden() -> frozenset[str]:
    return frozenset(panel for d in modules_disabled() for panel in d.dashboard_panels)


def billing_steps_skipped() -> frozenset[str]:
    """Steps of `billing run` whose module is disabled."""
    return frozenset(step for d in modules_disabled() for step in d.billing_steps)


def live_topic_closed_by(*, topic: str) -> ModuleDefinition | None:
    """The disabled module that owns `topic`, or None while it may be subscribed to."""
    return next((d for d in modules_disabled() if topic in d.live_topics), None)


def features_refused(*, features: list[str]) -> dict[str, str]:
    """The feature codes of `features` a plan may not list now, each with the reason."""
    declared = features_declared()
    available = features_available()
    refused = {}
    for feature in features:
        if feature not in declared:
            known = ", ".join(sorted(declared)) or _("none")
            refused[feature] = (_("no module provides %(feature)r (features: %(known)s)")
                                % {"feature": feature, "known": known})
        elif feature not in available:
            refused[feature] = (_("%(feature)r comes from the %(module)s module, which is disabled")
                                % {"feature": feature, "module": declared[feature]})
    return refused
