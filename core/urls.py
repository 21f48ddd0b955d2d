"""A URL resolver that tries only the patterns a path can match, for the API's ~80 routes.

Django's resolver tries every pattern of an include in order until one matches (a regex match and a
`tried` entry each): `POST /api/v1/credits/debit/` went through some 70 of the router's patterns first,
a tenth of the request's CPU. `prefix_indexed_path("api/v1/", patterns)` mounts them like
`path("api/v1/", include(patterns))`, but each path is first narrowed to the patterns whose literal
beginning it starts with (`^credits/` for DRF's routes of the credits viewset), and those are resolved by
Django's own resolver, in their original order. A pattern whose beginning is not plain text (no `^`,
an alternation, a leading group) is kept for every path. Only the debug 404 page's list of tried patterns
is shorter; `reverse()` and the schema's endpoint listing read the full list as before.
"""

from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RegexPattern, RoutePattern

# Regex metacharacters: the literal beginning of a pattern stops at the first one.
_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")
_QUANTIFIERS = frozenset("*+?{")
# Narrowed resolvers kept per process (one per distinct first path segment the API is asked for).
NARROWED_KEPT = 256


def literal_prefix(pattern) -> str:
    """The text every path this pattern matches starts with ('' when unknown)."""
    if isinstance(pattern, RoutePattern):
        return str(pattern._route).split("<", 1)[0]
    if not isinstance(pattern, RegexPattern):
        return ""
    regex = str(pattern._regex)
    if not regex.startswith("^") or "|" in regex:
        return ""
    prefix: list[str] = []
    for char in regex[1:]:
        if char in _REGEX_SPECIAL:
            if char in _QUANTIFIERS and prefix:
                prefix.pop()  # `a?`: the character before a quantifier may be absent
            break
        prefix.append(char)
    return "".join(prefix)


class PrefixIndexedResolver(URLResolver):
    def __init__(self, pattern, urlconf_name, *args, **kwargs):
        super().__init__(pattern, urlconf_name, *args, **kwargs)
        self._narrowed: dict[tuple[int, ...], URLResolver] = {}

    def _prefixes(self) -> list[tuple[str, URLPattern | URLResolver]]:
        prefixes = getattr(self, "_prefix_index", None)
        if prefixes is None:
            prefixes = self._prefix_index = [(literal_prefix(p.pattern), p) for p in self.url_patterns]
        return prefixes

    def resolve(self, path):
        match = self.pattern.match(str(path))
        if not match:
            return super().resolve(path)  # Django's Resolver404 for a path outside this prefix
        rest = match[0]
        chosen = tuple(i for i, (prefix, _) in enumerate(self._prefixes()) if rest.startswith(prefix))
        narrowed = self._narrowed.get(chosen)
        if narrowed is None:
            patterns = self._prefixes()
            narrowed = URLResolver(self.pattern, [patterns[i][1] for i in chosen], self.default_kwargs,
                                   app_name=self.app_name, namespace=self.namespace)
            if len(self._narrowed) >= NARROWED_KEPT:
                self._narrowed.clear()
            self._narrowed[chosen] = narrowed
        return narrowed.resolve(path)


def prefix_indexed_path(route: str, patterns: list) -> PrefixIndexedResolver:
    """`path(route, include(patterns))` resolved through the prefix index."""
    return PrefixIndexedResolver(RoutePattern(route, is_endpoint=False), patterns)
