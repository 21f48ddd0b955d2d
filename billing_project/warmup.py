"""What a process's first request would otherwise do, done when the application loads.

Django imports the URLconf (and with it every view and serializer) and builds the URL resolvers' reverse
maps lazily, on the first request that needs them, and the module doors are worked out on the first request
too. That is about 0.2 s of CPU in each new worker's first request, paid again after every restart; done at
load time it comes before the process accepts connections, and under gunicorn `--preload` once in the
master instead of once per worker."""

from django.urls import URLResolver, get_resolver

from modules.middleware import door_map


def _resolver_populate(resolver: URLResolver) -> None:
    # reverse_dict populates this resolver (its patterns' regexes compiled on the way); namespaced includes
    # keep resolvers of their own, populated on their first reverse.
    resolver.reverse_dict  # noqa: B018
    for _prefix, namespaced in resolver.namespace_dict.values():
        _resolver_populate(namespaced)


def application_warm_up() -> None:
    _resolver_populate(get_resolver())
    door_map()
