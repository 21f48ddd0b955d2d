"""Every DRF endpoint of a URLconf, found by walking the URL resolver: a new route is walked by the
permission tests without anyone listing it."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSetMixin

from subscriptions.api.permissions import ActionPermissions, Requirement

# Open to anyone: signing in, the schema and its docs, the router's index of URLs, and the catch-all that
# answers the JSON 404 for paths no endpoint matches.
PUBLIC_ENDPOINTS = {"api-token", "api-schema", "api-docs", "api-root", "api-not-found"}
# Methods every APIView answers by itself: OPTIONS describes the endpoint, HEAD mirrors GET.
IMPLICIT_METHODS = {"head", "options"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    # The viewset action, or the method for a plain APIView: the key of `required_permissions`.
    action: str
    callback: Callable
    kwargs: tuple[str, ...]

    @property
    def view_class(self) -> type[APIView]:
        return self.callback.cls

    @property
    def requirement(self) -> Requirement | None:
        return getattr(self.view_class, "required_permissions", {}).get(self.action)

    @property
    def checks_action_permissions(self) -> bool:
        return ActionPermissions in tuple(self.view_class.permission_classes)

    def path(self, **kwargs) -> str:
        return reverse(self.name, kwargs=kwargs or None)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name} ({self.view_class.__name__}.{self.action})"


def _patterns(patterns) -> Iterator[URLPattern]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns)
        else:
            yield pattern


def api_endpoints(urlconf=None) -> list[Endpoint]:
    """(name, method, action) of every route served by a DRF view; format-suffix twins are left out,
    they reach the same view and action."""
    found = []
    for pattern in _patterns(get_resolver(urlconf).url_patterns):
        view = getattr(pattern.callback, "cls", None)
        if view is None or not issubclass(view, APIView):
            continue
        kwargs = tuple(pattern.pattern.regex.groupindex)
        if "format" in kwargs:
            continue
        if issubclass(view, ViewSetMixin):
            methods = {m: a for m, a in pattern.callback.actions.items() if m not in IMPLICIT_METHODS}
        else:
            methods = {m: m for m in view.http_method_names if m not in IMPLICIT_METHODS and hasattr(view, m)}
        found += [Endpoint(pattern.name, method, action, pattern.callback, kwargs)
                  for method, action in sorted(methods.items())]
    return found
