"""The dependency rules of modules, as pure functions over {code: definition}."""

from collections.abc import Mapping

from django.utils.translation import gettext as _

from modules.definitions import ModuleDefinition


class ModuleGraphError(Exception):
    """The declared modules cannot be loaded as they are; the message says which and why."""


def graph_validate(*, definitions: Mapping[str, ModuleDefinition]) -> None:
    """Refuse unknown requirements, cores requiring optional modules and cycles (one clear message)."""
    for code, definition in definitions.items():
        for required in definition.requires:
            if required not in definitions:
                raise ModuleGraphError(_("Module %(module)r requires %(required)r, which no app declares.")
                                       % {"module": code, "required": required})
            if definition.is_core and not definitions[required].is_core:
                raise ModuleGraphError(_("Core module %(module)r requires %(required)r, which is optional: a core "
                                         "module must stay on, so everything it needs must too.")
                                       % {"module": code, "required": required})
    cycle = _cycle_find(definitions)
    if cycle:
        raise ModuleGraphError(_("Modules require each other in a cycle: %(cycle)s.") % {"cycle": " -> ".join(cycle)})


def _cycle_find(definitions: Mapping[str, ModuleDefinition]) -> list[str]:
    """A cycle as a path that ends where it starts, or [] (iterative depth-first search)."""
    done: set[str] = set()
    for start in sorted(definitions):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(definitions[start].requires)]
        while stack:
            required = next(stack[-1], None)
            if required is None:
                stack.pop()
                finished = path.pop()
                done.add(finished)
                on_path.discard(finished)
                continue
            if required in on_path:
                return [*path[path.index(required):], required]
            if required not in done:
                path.append(required)
                on_path.add(required)
                stack.append(iter(definitions[required].requires))
    return []


def requirements_closure(*, definitions: Mapping[str, ModuleDefinition], code: str) -> set[str]:
    """`code` and every module it needs, directly or not: what enabling it enables."""
    seen, todo = set(), [code]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(definitions[current].requires)
    return seen


def dependents_closure(*, definitions: Mapping[str, ModuleDefinition], code: str) -> set[str]:
    """`code` and every module that needs it, directly or not: what disabling it disables."""
    needed_by: dict[str, list[str]] = {c: [] for c in definitions}
    for current, definition in definitions.items():
        for required in definition.requires:
            needed_by[required].append(current)
    seen, todo = set(), [code]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(needed_by[current])
    return seen


def graph_order(*, definitions: Mapping[str, ModuleDefinition], codes: set[str]) -> list[str]:
    """`codes` with every module after the ones it requires (hooks of an enable run in this order; a
    disable runs them reversed). Ties are broken by code, so the order is stable."""
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(codes):
        ready = sorted(c for c in codes - placed
                       if all(r in placed or r not in codes for r in definitions[c].requires))
        ordered.extend(ready)
        placed.update(ready)
    return ordered
