"""What a module is: the declaration an app makes next to its code."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

HealthStatus = Literal["ok", "degraded", "down"]


@dataclass(frozen=True)
class HealthReport:
    # ok: working; degraded: reported but the instance keeps serving; down: the module cannot work.
    status: HealthStatus
    message: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigField:
    """One configuration key of a module, with its type, bounds and default.

    A plain typed schema rather than a validation library: configuration values arrive as strings
    (`modules config CODE key=value`, an admin form) and every key here is a bool, a bounded integer or a
    choice, which needs no more than this (docs/decisions.md).
    """

    name: str
    kind: Literal["int", "bool", "str"]
    default: int | bool | str
    # Shown to staff beside the field: a gettext_lazy string, worded in the reader's language when read.
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None
    # For kind "str": the only values accepted (empty means any string up to 200 characters).
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModuleDefinition:
    # The machine name (URLs, commands, JSON, ModuleState rows): English, never translated.
    code: str
    # What people read (the admin's modules page, messages): gettext_lazy strings, so each reader gets them in
    # their language although definitions are built once at import (docs/i18n.md). A brand stays as it is.
    name: str
    version: str
    description: str = ""
    # Codes of the modules this one needs enabled; enabling it enables them, disabling one of them
    # disables this one.
    requires: tuple[str, ...] = ()
    # Feature codes plans may list (plan gating); a plan may list only enabled modules' features.
    features: tuple[str, ...] = ()
    # Django permissions ("app_label.codename") the module's doors check.
    permissions: tuple[str, ...] = ()
    # Core modules are always on and may only require other core modules.
    is_core: bool = False
    # Internal modules serve staff only (no customer-facing door).
    is_internal: bool = False
    config: tuple[ConfigField, ...] = ()
    # Lifecycle hooks: on_enable / on_disable run once per change, inside the transaction that makes it
    # and under its row lock; on_startup runs once per process when the registry is validated.
    on_enable: Callable[[], None] | None = None
    on_disable: Callable[[], None] | None = None
    on_startup: Callable[[], None] | None = None
    # Called by /healthz with deep=True for `?deep=1` (one cheap call to the module's remote peer).
    health_check: Callable[[bool], HealthReport] | None = None
    # Doors closed while the module is disabled.
    api_prefixes: tuple[str, ...] = ()  # URL path prefixes answering 404 `module_disabled`
    admin_models: tuple[str, ...] = ()  # "app_label.modelname" hidden from the admin
    dashboard_panels: tuple[str, ...] = ()  # ids of the admin dashboard's panels
    live_topics: tuple[str, ...] = ()  # WebSocket topics refusing subscription
    billing_steps: tuple[str, ...] = ()  # steps of `billing run` skipped

    @property
    def config_defaults(self) -> dict:
        return {item.name: item.default for item in self.config}
