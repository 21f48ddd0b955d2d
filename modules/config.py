"""A module's configuration checked against its schema (`ModuleDefinition.config`)."""

from collections.abc import Mapping

from django.utils.translation import gettext as _

from modules.definitions import ConfigField, ModuleDefinition

STR_MAX_LENGTH = 200
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(Exception):
    """A configuration value the schema refuses; names the field and the reason (worded in the active
    language: the reason is shown beside the field, so it does not repeat the field's name)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _value_parse(item: ConfigField, raw) -> int | bool | str:
    if item.kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(item.name, _("must be true or false."))
    if item.kind == "int":
        if isinstance(raw, bool):
            raise ConfigError(item.name, _("must be a whole number."))
        try:
            value = int(raw.strip()) if isinstance(raw, str) else int(raw)
        except (TypeError, ValueError):
            raise ConfigError(item.name, _("must be a whole number.")) from None
        if item.minimum is not None and value < item.minimum:
            raise ConfigError(item.name, _("must be at least %(minimum)s.") % {"minimum": item.minimum})
        if item.maximum is not None and value > item.maximum:
            raise ConfigError(item.name, _("must be at most %(maximum)s.") % {"maximum": item.maximum})
        return value
    if not isinstance(raw, str) or len(raw) > STR_MAX_LENGTH or "\x00" in raw:
        raise ConfigError(item.name, _("must be text of at most %(length)s characters.") % {"length": STR_MAX_LENGTH})
    if item.choices and raw not in item.choices:
        raise ConfigError(item.name, _("must be one of %(choices)s.") % {"choices": ", ".join(item.choices)})
    return raw


def config_validate(*, definition: ModuleDefinition, current: Mapping, changes: Mapping) -> dict:
    """The module's whole configuration after `changes` (raw values, strings from a command line or a
    form), every key checked; unknown keys are refused. Keys the stored config lacks take defaults."""
    schema = {item.name: item for item in definition.config}
    for key in changes:
        if key not in schema:
            known = ", ".join(schema) or _("none")
            raise ConfigError(str(key), _("is not a setting of %(module)s (its settings: %(known)s).")
                              % {"module": definition.code, "known": known})
    merged = {**definition.config_defaults, **{k: v for k, v in current.items() if k in schema}}
    for key, raw in changes.items():
        merged[key] = _value_parse(schema[key], raw)
    return merged
