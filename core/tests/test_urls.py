import pytest
from django.urls import Resolver404, path, re_path
from django.urls.resolvers import RegexPattern, RoutePattern, URLResolver

from core.urls import PrefixIndexedResolver, literal_prefix, prefix_indexed_path


def _view(request, **kwargs):
    return None


@pytest.mark.parametrize(("regex", "prefix"), [
    (r"^credits/debit/$", "credits/debit/"),
    (r"^credits/debit\.(?P<format>[a-z0-9]+)/?$", "credits/debit"),
    (r"^plans/(?P<pk>[^/.]+)/$", "plans/"),
    (r"^ab?c/$", "a"),
    (r"^abc*/$", "ab"),
    (r"^a{2}/$", ""),
    (r"^$", ""),
    (r"credits/", ""),  # unanchored: search finds it anywhere
    (r"^credits/|^plans/", ""),
    (r"^(?i)credits/", ""),
])
def test_a_regex_patterns_literal_prefix_is_what_every_match_starts_with(regex, prefix):
    assert literal_prefix(RegexPattern(regex)) == prefix


def test_a_routes_literal_prefix_stops_at_its_first_converter():
    assert literal_prefix(RoutePattern("auth/<int:pk>/token/")) == "auth/"
    assert literal_prefix(RoutePattern("auth/token/")) == "auth/token/"


PATTERNS = [
    re_path(r"^$", _view, name="root"),
    re_path(r"^plans/$", _view, name="plan-list"),
    re_path(r"^plans/(?P<pk>[^/.]+)/$", _view, name="plan-detail"),
    re_path(r"^credits/ledger/$", _view, name="ledger"),
    re_path(r"^credits/(?P<pk>[^/.]+)/$", _view, name="credit-detail"),
    re_path(r"^credits/debit/$", _view, name="debit"),  # shadowed by credit-detail: order must be kept
    path("<str:anything>/", _view, name="catch-all"),
    re_path(r"(?P<rest>.*)", _view, name="unanchored"),
]
PATHS = ["api/v1/", "api/v1/plans/", "api/v1/plans/3/", "api/v1/credits/ledger/", "api/v1/credits/debit/",
         "api/v1/credits/9/", "api/v1/other/", "api/v1/deep/er/", "api/v2/plans/", "api/v1/plans/3/x/"]


def _outcome(resolver, path):
    try:
        match = resolver.resolve(path)
    except Resolver404:
        return None
    return match.url_name, match.args, match.kwargs, match.route, match.app_names, match.namespaces


@pytest.mark.parametrize("path_", PATHS)
def test_the_indexed_resolver_resolves_each_path_as_djangos_own_does(path_):
    plain = URLResolver(RoutePattern("api/v1/", is_endpoint=False), PATTERNS)
    indexed = prefix_indexed_path("api/v1/", PATTERNS)

    assert isinstance(indexed, PrefixIndexedResolver)
    assert _outcome(indexed, path_) == _outcome(plain, path_)
    assert _outcome(indexed, path_) == _outcome(indexed, path_)  # from its memo the second time
