"""The modules this process is made of: discovered from each app's `modules.py` at startup and validated.

An app declares its modules in `<app>/modules.py` as a list `MODULES` (and its live topics as `TOPICS`);
`ModulesConfig.ready()` collects them all (`registry_load`) and refuses to start on an invalid graph.
"""

from importlib import import_module
from importlib.util import find_spec
from types import MappingProxyType

from django.apps import apps
from django.utils.translation import gettext as _

from modules.definitions import ModuleDefinition
from modules.graph import ModuleGraphError, graph_validate
from modules.topics import Topic

_definitions: dict[str, ModuleDefinition] = {}
_topics: dict[str, Topic] = {}


def registry_load() -> None:
    """Collect `MODULES` from every installed app's `modules.py`, then validate the whole graph."""
    found: dict[str, ModuleDefinition] = {}
    topics: dict[str, Topic] = {}
    for app_config in apps.get_app_configs():
        name = f"{app_config.name}.modules"
        if find_spec(app_config.name) is None or find_spec(name) is None:
            continue
        declared = import_module(name)
        for definition in getattr(declared, "MODULES", ()):
            if definition.code in found:
                raise ModuleGraphError(_("Module %(module)r is declared twice (again in %(place)s).")
                                       % {"module": definition.code, "place": name})
            found[definition.code] = definition
        for topic in getattr(declared, "TOPICS", ()):
            if topic.name in topics:
                raise ModuleGraphError(_("Topic %(topic)r is declared twice (again in %(place)s).")
                                       % {"topic": topic.name, "place": name})
            topics[topic.name] = topic
    graph_validate(definitions=found)
    for topic in topics.values():
        if topic.module not in found or topic.name not in found[topic.module].live_topics:
            raise ModuleGraphError(_("Topic %(topic)r names module %(module)r, which does not list it in "
                                     "live_topics.") % {"topic": topic.name, "module": topic.module})
    _definitions.clear()
    _definitions.update(found)
    _topics.clear()
    _topics.update(topics)


def module_definitions() -> MappingProxyType:
    """Every declared module by code (read-only)."""
    return MappingProxyType(_definitions)


def live_topics() -> MappingProxyType:
    """Every declared live topic by name (read-only)."""
    return MappingProxyType(_topics)


def module_definition(*, code: str) -> ModuleDefinition:
    """The module declared as `code`; KeyError for an unknown one."""
    return _definitions[code]
