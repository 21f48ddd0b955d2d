"""Plans list only feature codes that enabled modules declare, through every door that writes plans."""

import pytest

from billing_project.tests.admin_helpers import change_form_data
from billing_project.tests.api_support import staff_client
from core.audit import Actor
from modules.services import module_disable
from subscriptions.models import Plan
from subscriptions.tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

BODY = {"code": "team", "name": "Team", "amount": 4900}


def test_a_plan_may_list_features_of_enabled_modules():
    created = staff_client().post("/api/v1/plans/", {**BODY, "features": ["api_access", "live_updates"]},
                                  format="json")

    assert created.status_code == 201 and Plan.objects.get(code="team").features == ["api_access", "live_updates"]


def test_a_feature_no_module_declares_is_a_400_naming_the_field():
    response = staff_client().post("/api/v1/plans/", {**BODY, "features": ["api_access", "sso"]}, format="json")

    error = response.json()["error"]
    assert response.status_code == 400 and list(error["fields"]) == ["features"]
    assert "no module provides 'sso'" in error["fields"]["features"][0]
    assert not Plan.objects.filter(code="team").exists()


def test_a_feature_of_a_disabled_module_is_refused_naming_the_module():
    module_disable(code="live", actor=Actor.system("test"))
    plan = PlanFactory(features=["api_access"])

    response = staff_client().patch(f"/api/v1/plans/{plan.pk}/", {"features": ["live_updates"]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["features"] == [
        "'live_updates' comes from the live module, which is disabled"]
    plan.refresh_from_db()
    assert plan.features == ["api_access"]


def test_the_admin_form_refuses_an_unknown_feature(admin_client):
    plan = PlanFactory(features=["api_access"])
    page = admin_client.get(f"/admin/subscriptions/plan/{plan.pk}/change/")

    response = admin_client.post(f"/admin/subscriptions/plan/{plan.pk}/change/",
                                 change_form_data(page, features='["api_access", "sso"]'))

    assert response.status_code == 200 and "no module provides" in response.content.decode()
    plan.refresh_from_db()
    assert plan.features == ["api_access"]
