"""The dependency rules over random module graphs (hypothesis): validation, closures, and switching
through the real services and database keeping every rule."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.audit import Actor
from core.exceptions import InvalidOperation
from modules.graph import ModuleGraphError, dependents_closure, graph_order, graph_validate, requirements_closure
from modules.selectors import modules_enabled_codes
from modules.services import module_disable, module_enable
from modules.tests.support import module, registry_swapped

CODES = [f"m{i}" for i in range(7)]
ACTOR = Actor.system("test")


@st.composite
def acyclic_graphs(draw):
    """A valid graph: each module requires only modules before it, and cores require only cores."""
    size = draw(st.integers(min_value=1, max_value=len(CODES)))
    codes = CODES[:size]
    definitions = {}
    for index, code in enumerate(codes):
        core = draw(st.booleans()) and index < 3
        earlier = [c for c in codes[:index] if definitions[c].is_core or not core]
        requires = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        definitions[code] = module(code, *requires, core=core)
    return definitions


@st.composite
def any_graphs(draw):
    size = draw(st.integers(min_value=1, max_value=5))
    codes = CODES[:size]
    return {code: module(code, *draw(st.lists(st.sampled_from(codes), unique=True, max_size=3)),
                         core=draw(st.booleans())) for code in codes}


def _has_cycle(definitions) -> bool:
    return any(code in requirements_closure(definitions=definitions, code=required)
               for code, d in definitions.items() for required in d.requires)


@given(any_graphs())
def test_a_graph_is_refused_exactly_when_it_has_a_cycle_or_a_core_needing_an_optional_module(definitions):
    core_on_optional = any(d.is_core and not definitions[r].is_core for d in definitions.values() for r in d.requires)
    try:
        graph_validate(definitions=definitions)
        refused = None
    except ModuleGraphError as error:
        refused = str(error)
    assert (refused is not None) == (core_on_optional or _has_cycle(definitions))
    if refused and not core_on_optional:
        assert "cycle" in refused


def test_an_unknown_requirement_is_named():
    with pytest.raises(ModuleGraphError, match="'a' requires 'ghost', which no app declares"):
        graph_validate(definitions={"a": module("a", "ghost")})


def test_a_cycle_is_named_as_a_path():
    with pytest.raises(ModuleGraphError, match="a -> b -> c -> a"):
        graph_validate(definitions={"a": module("a", "b"), "b": module("b", "c"), "c": module("c", "a")})


@given(acyclic_graphs())
def test_closures_are_closed_and_the_order_puts_requirements_first(definitions):
    graph_validate(definitions=definitions)
    for code in definitions:
        needed = requirements_closure(definitions=definitions, code=code)
        assert all(set(definitions[c].requires) <= needed for c in needed)
        dependents = dependents_closure(definitions=definitions, code=code)
        assert all(c in dependents for c, d in definitions.items() if set(d.requires) & dependents)
    order = graph_order(definitions=definitions, codes=set(definitions))
    assert all(order.index(r) < order.index(c) for c, d in definitions.items() for r in d.requires)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(acyclic_graphs(), st.lists(st.tuples(st.booleans(), st.sampled_from(CODES)), max_size=8))
def test_switching_keeps_every_rule_whatever_the_sequence(definitions, switches):
    with registry_swapped(definitions), transaction.atomic():
        for enable, code in switches:
            if code not in definitions:
                continue
            try:
                (module_enable if enable else module_disable)(code=code, actor=ACTOR)
            except InvalidOperation:
                assert not enable and definitions[code].is_core  # only disabling a core module is refused
                continue
            enabled = modules_enabled_codes()
            # What was asked holds, every enabled module has its requirements, and cores stay on.
            assert (code in enabled) == enable
            assert all(set(definitions[c].requires) <= enabled for c in enabled)
            assert all(c in enabled for c, d in definitions.items() if d.is_core)
        transaction.set_rollback(True)
