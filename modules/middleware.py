"""Closes a disabled module's HTTP doors: its API routes answer 404 `module_disabled` in the API's error
shape, its admin pages Django's 404. One memo lookup per request while every module is on.

Which paths are whose doors is worked out once per process (per URLconf and module registry, lazily, on
the first request), not per request: it needs `reverse("admin:index")`, which cost a tenth of an API
request's CPU when it ran once per module per request."""

from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, JsonResponse
from django.urls import NoReverseMatch, get_urlconf, reverse
from django.utils import translation
from django.utils.translation import gettext as _

from core.api.errors import error_body
from modules.definitions import ModuleDefinition
from modules.registry import module_definitions
from modules.selectors import modules_disabled

# Door maps kept per key; tests swap URLconfs and registries, production has one of each.
DOOR_MAPS_KEPT = 16


@dataclass(frozen=True)
class ModuleDoors:
    definition: ModuleDefinition
    api_prefixes: tuple[str, ...]
    admin_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class DoorMap:
    doors: dict[str, ModuleDoors]
    # Every door's prefix at once: a path no module owns is told apart by one startswith.
    owned_prefixes: tuple[str, ...]


_door_maps: dict[tuple, DoorMap] = {}


def _admin_root() -> str | None:
    try:
        return reverse("admin:index")
    except NoReverseMatch:  # a URLconf without the admin (some tests route their own views)
        return None


def _door_map_build() -> DoorMap:
    root = _admin_root()
    doors = {}
    for code, definition in module_definitions().items():
        admin = tuple(f"{root}{label.replace('.', '/')}/" for label in definition.admin_models) if root else ()
        doors[code] = ModuleDoors(definition=definition, api_prefixes=tuple(definition.api_prefixes),
                                  admin_prefixes=admin)
    owned = tuple(p for door in doors.values() for p in (*door.api_prefixes, *door.admin_prefixes))
    return DoorMap(doors=doors, owned_prefixes=owned)


def door_map() -> DoorMap:
    """The doors of the active URLconf and registry. Keyed like Django's own resolver cache (by URLconf
    name, which a test's `urls` marker or override changes) and by the registered definitions (tests swap
    the registry), so a change of either is a new map, never a stale one."""
    key = (get_urlconf() or settings.ROOT_URLCONF, tuple(map(id, module_definitions().values())))
    found = _door_maps.get(key)
    if found is None:
        found = _door_map_build()
        if len(_door_maps) >= DOOR_MAPS_KEPT:
            _door_maps.clear()
        _door_maps[key] = found
    return found


def _reader_language(request) -> str:
    """The language LocaleMiddleware would pick (it runs after this middleware): the language cookie,
    else Accept-Language, else LANGUAGE_CODE; the active language for a call without a request."""
    return translation.get_language_from_request(request) if request is not None else translation.get_language()


def module_closed_answer(*, path: str, request=None):
    """The answer for a request to a disabled module's door, or None when the path is open. Paths no
    module owns (the schema, /healthz, the admin's index) never ask which modules are on. The message is
    worded in the reader's language, worked out only when a door is closed; `code` and `details` stay
    machine words."""
    doors = door_map()
    if not path.startswith(doors.owned_prefixes):
        return None
    for definition in modules_disabled():
        door = doors.doors.get(definition.code)
        if door is None:
            continue
        api = bool(door.api_prefixes) and path.startswith(door.api_prefixes)
        if not api and not (door.admin_prefixes and path.startswith(door.admin_prefixes)):
            continue
        with translation.override(_reader_language(request)):
            if api:
                message = (_("The %(module)s module (%(code)s) is disabled, so this endpoint is unavailable.")
                           % {"module": definition.name, "code": definition.code})
                return JsonResponse(error_body(type_="not_found", code="module_disabled", message=message,
                                               details={"module": definition.code}), status=404)
            raise Http404(_("The %(module)s module is disabled.") % {"module": definition.name})
    return None


class ModuleDoorsMiddleware:
    # Runs before LocaleMiddleware (a closed door needs no session), so a closed door reads the reader's
    # language itself.
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return module_closed_answer(path=request.path_info, request=request) or self.get_response(request)
