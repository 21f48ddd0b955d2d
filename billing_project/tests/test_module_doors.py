"""A disabled module's doors: API routes 404 with `module_disabled`, admin entries hidden and their
pages 404, dashboard panels left out; enabling it opens them again."""

import pytest

from billing_project.tests.api_support import api_customer, staff_client
from core.audit import Actor
from modules.services import module_disable, module_enable

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")

# A route of each optional module with one, and what it answers while the module is on.
ROUTES = [
    ("credits", "/api/v1/credits/balance/"),
    ("usage", "/api/v1/usage/summary/"),
    ("usage", "/api/v1/meters/"),
    ("invoicing", "/api/v1/invoices/"),
    ("invoicing", "/api/v1/payments/"),
]


@pytest.mark.parametrize(("code", "path"), ROUTES)
def test_a_disabled_modules_api_routes_answer_404_module_disabled(code, path):
    caller = api_customer()
    assert caller.client.get(path).status_code == 200

    module_disable(code=code, actor=ACTOR)
    closed = caller.client.get(path)
    module_enable(code=code, actor=ACTOR)

    assert closed.status_code == 404
    error = closed.json()["error"]
    assert (error["type"], error["code"], error["details"]) == ("not_found", "module_disabled", {"module": code})
    assert code in error["message"]
    assert caller.client.get(path).status_code == 200


def test_writes_to_a_disabled_module_are_refused_before_anything_runs():
    caller = api_customer()
    module_disable(code="usage", actor=ACTOR)

    response = caller.client.post("/api/v1/usage/events/", {"meter": "calls", "idempotency_key": "k"}, format="json")

    assert response.status_code == 404 and response.json()["error"]["code"] == "module_disabled"


def test_staff_get_the_same_404_and_a_rails_webhook_too(client):
    module_disable(code="invoicing", actor=ACTOR)
    assert staff_client().get("/api/v1/invoices/").status_code == 404
    module_enable(code="invoicing", actor=ACTOR)

    module_disable(code="stripe", actor=ACTOR)
    assert client.post("/webhooks/stripe/", b"{}", content_type="application/json").status_code == 404


def test_a_disabled_modules_admin_entries_are_hidden_and_their_pages_404(admin_client):
    module_disable(code="credits", actor=ACTOR)

    index = admin_client.get("/admin/").content.decode()

    assert "/admin/credits/creditgrant/" not in index and "/admin/usage/meter/" in index
    assert admin_client.get("/admin/credits/creditgrant/").status_code == 404
    assert admin_client.get("/admin/payments/creditpackorder/").status_code == 404
    assert admin_client.get("/admin/credits/").status_code == 404  # the app page with nothing left in it
    module_enable(code="credits", actor=ACTOR)
    assert admin_client.get("/admin/credits/creditgrant/").status_code == 200


def test_a_disabled_modules_dashboard_panels_are_left_out(admin_client):
    module_disable(code="invoicing", actor=ACTOR)

    page = admin_client.get("/admin/dashboard/").content.decode()

    assert 'id="dashboard-receivables"' not in page and 'id="dashboard-collected"' not in page
    assert 'id="dashboard-credits"' in page and 'id="dashboard-mrr"' in page


def test_the_reports_module_switched_off_closes_its_endpoints_and_the_admin_page(admin_client):
    staff = staff_client()
    assert staff.get("/api/v1/reports/payment-summary/").status_code == 200
    assert admin_client.get("/admin/reports/").status_code == 200

    module_disable(code="reports", actor=ACTOR)

    closed = staff.get("/api/v1/reports/payment-summary/")
    assert closed.status_code == 404 and closed.json()["error"]["code"] == "module_disabled"
    assert admin_client.get("/admin/reports/").status_code == 404
    assert "/admin/reports/" not in admin_client.get("/admin/dashboard/").content.decode()
