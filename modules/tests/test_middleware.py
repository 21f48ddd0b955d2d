"""The doors middleware works out which paths are whose doors once per URLconf and registry, not per
request, and follows a change of either."""

import pytest
from django.http import Http404
from django.test import override_settings

from core.audit import Actor
from modules import middleware
from modules.middleware import module_closed_answer
from modules.services import module_disable
from modules.tests.support import module, registry_swapped

ACTOR = Actor.system("test")


@pytest.fixture
def reverse_calls(monkeypatch):
    calls = []
    real = middleware.reverse

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(middleware, "reverse", counted)
    middleware._door_maps.clear()
    return calls


@pytest.mark.django_db
def test_the_admin_root_is_resolved_once_not_per_request_or_per_module(reverse_calls):
    for path in ("/api/v1/credits/debit/", "/admin/credits/creditgrant/", "/healthz", "/api/v1/plans/") * 20:
        assert module_closed_answer(path=path) is None

    assert len(reverse_calls) == 1


@pytest.mark.django_db
def test_a_disabled_modules_admin_pages_follow_the_admin_to_another_urlconf(reverse_calls):
    module_disable(code="credits", actor=ACTOR)
    with pytest.raises(Http404):
        module_closed_answer(path="/admin/credits/creditgrant/")

    with override_settings(ROOT_URLCONF="modules.tests.urls_admin_elsewhere"):
        assert module_closed_answer(path="/admin/credits/creditgrant/") is None
        with pytest.raises(Http404):
            module_closed_answer(path="/backoffice/credits/creditgrant/")

    with pytest.raises(Http404):
        module_closed_answer(path="/admin/credits/creditgrant/")
    assert module_closed_answer(path="/backoffice/credits/creditgrant/") is None
    assert len(reverse_calls) == 2  # once per URLconf


@pytest.mark.django_db
def test_a_swapped_registry_gets_its_own_doors(reverse_calls):
    extra = module("extra", "platform", api_prefixes=("/api/v1/extra/",))
    platform = module("platform", core=True)
    with registry_swapped({"platform": platform, "extra": extra}):
        module_disable(code="extra", actor=ACTOR)
        closed = module_closed_answer(path="/api/v1/extra/things/")
        assert closed is not None and closed.status_code == 404
        assert module_closed_answer(path="/api/v1/credits/debit/") is None  # not a door of this registry
