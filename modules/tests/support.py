"""Helpers for the modules tests: a registry swapped for a test's own graph, restored afterwards."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

from modules import registry
from modules.definitions import ModuleDefinition
from modules.selectors import modules_state_forget


@contextmanager
def registry_swapped(definitions: Mapping[str, ModuleDefinition]) -> Iterator[None]:
    saved = dict(registry._definitions)
    registry._definitions.clear()
    registry._definitions.update(definitions)
    modules_state_forget()
    try:
        yield
    finally:
        registry._definitions.clear()
        registry._definitions.update(saved)
        modules_state_forget()


@contextmanager
def module_replaced(code: str, **changes) -> Iterator[ModuleDefinition]:
    """The registered module `code` with some fields changed (a hook, a health check) for the block."""
    definitions = dict(registry._definitions)
    definitions[code] = replace(definitions[code], **changes)
    with registry_swapped(definitions):
        yield definitions[code]


def module(code: str, *requires: str, core: bool = False, **fields) -> ModuleDefinition:
    return ModuleDefinition(code=code, name=code.title(), version="1.0.0", requires=requires, is_core=core, **fields)
