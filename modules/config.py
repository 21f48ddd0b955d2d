"""A module's configuration checked against its schema (`ModuleDefinition.config`)."""

from collections.abc import Mapping

from modules.definitions import ConfigField, ModuleDefinition

STR_MAX_LENGTH = 200
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(Exception):
    """A configuration value the schema refuses; names the field and the reason."""

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
        raise ConfigError(item.name, "must be true or false.")
    if item.kind == "int":
        if isinstance(raw, bool):
            raise ConfigError(item.name, "must be a whole number.")
        try:
            value = int(raw.strip()) if isinstance(raw, str) else int(raw)
        except (TypeError, ValueError):
            raise ConfigError(item.name, "must be a whole number.") from None
        if item.minimum is not None and value < item.minimum:
            raise ConfigError(item.name, f"must be at least {item.minimum}.")
        if item.maximum is not None and value > item.maximum:
            raise ConfigError(item.name, f"must be at most {item.maximum}.")
        return value
    if not isinstance(raw, str) or len(raw) > STR_MAX_LENGTH or "\x00" in raw:
        raise ConfigError(item.name, f"must be text of at most {STR_MAX_LENGTH} characters.")
    if item.choices and raw not in item.choices:
        raise ConfigError(item.name, f"must be one of {', '.join(item.choices)}.")
    return raw


def config_validate(*, definition: ModuleDefinition, current: Mapping, changes: Mapping) -> dict:
    """The module's whole configuration after `changes` (raw values, strings from a command line or a
    form), every key checked; unknown keys are refused. Keys the stored config lacks take defaults."""
    schema = {item.name: item for item in definition.config}
    for key in changes:
        if key not in schema:
            known = ", ".join(schema) or "none"
            raise ConfigError(str(key), f"is not a setting of {definition.code} (its settings: {known}).")
    merged = {**definition.config_defaults, **{k: v for k, v in current.items() if k in schema}}
    for key, raw in changes.items():
        merged[key] = _value_parse(schema[key], raw)
    return merged
