"""Closes a disabled module's HTTP doors: its API routes answer 404 `module_disabled` in the API's error
shape, its admin pages Django's 404. One memo lookup per request while every module is on."""

from django.http import Http404, JsonResponse
from django.urls import NoReverseMatch, reverse

from core.api.errors import error_body
from modules.definitions import ModuleDefinition
from modules.registry import module_definitions
from modules.selectors import modules_disabled


def _admin_prefixes(definition: ModuleDefinition) -> tuple[str, ...]:
    try:
        root = reverse("admin:index")
    except NoReverseMatch:  # a URLconf without the admin (some tests route their own views)
        return ()
    return tuple(f"{root}{label.replace('.', '/')}/" for label in definition.admin_models)


def _door_owners(path: str) -> list[ModuleDefinition]:
    """The modules whose doors `path` is, from the declarations alone (no query)."""
    return [d for d in module_definitions().values()
            if (d.api_prefixes and path.startswith(d.api_prefixes))
            or (d.admin_models and path.startswith(_admin_prefixes(d)))]


def module_closed_answer(*, path: str):
    """The answer for a request to a disabled module's door, or None when the path is open. Paths no
    module owns (the schema, /healthz, the admin's index) never ask which modules are on."""
    if not _door_owners(path):
        return None
    for definition in modules_disabled():
        if path.startswith(definition.api_prefixes) if definition.api_prefixes else False:
            message = f"The {definition.name} module ({definition.code}) is disabled, so this endpoint is unavailable."
            return JsonResponse(error_body(type_="not_found", code="module_disabled", message=message,
                                           details={"module": definition.code}), status=404)
        if definition.admin_models and path.startswith(_admin_prefixes(definition)):
            raise Http404(f"The {definition.name} module is disabled.")
    return None


class ModuleDoorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return module_closed_answer(path=request.path_info) or self.get_response(request)
