"""The report endpoints: staff with reports.view_reports read them, other staff are refused, customers
are told they do not exist, and bad parameters answer 400 naming the parameter."""

from datetime import UTC, datetime

import pytest

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_support import api_customer, token_client
from reports.selectors import ReportRange, report_mrr, report_revenue
from reports.tests.history import history_build
from usage.tests.factories import MeterFactory

REPORTS = ["payment-summary", "revenue", "mrr", "churn", "subscriptions", "receivables", "credits", "forecast",
           "usage"]
URL = "/api/v1/reports/{}/"
QUERY = {"from": "2025-01-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}


@pytest.fixture
def reader():
    return token_client(staff_user("reports.view_reports", username="finance-reader"))


@pytest.mark.django_db
@pytest.mark.parametrize("report", REPORTS)
def test_staff_with_view_reports_read_every_report(reader, report):
    response = reader.get(URL.format(report), {} if report == "forecast" else QUERY)
    assert response.status_code == 200, response.content
    assert response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("report", REPORTS)
def test_staff_without_view_reports_are_refused(report):
    client = token_client(staff_user("payments.view_invoice", "payments.view_payment", username="clerk"))
    response = client.get(URL.format(report))
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "You need the reports.view_reports permission for this action."


@pytest.mark.django_db
@pytest.mark.parametrize("report", REPORTS)
def test_customers_are_told_reports_do_not_exist(report):
    response = api_customer().client.get(URL.format(report))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.django_db
def test_signed_out_callers_must_sign_in(client):
    assert client.get(URL.format("revenue")).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(("report", "query", "field"), [
    ("revenue", {"from": "yesterday"}, "from"),
    ("revenue", {"to": "2026-13-01"}, "to"),
    ("mrr", {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ("mrr", {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ("churn", {"from": "1990-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
    ("churn", {"to": "0001-08-25T12:43:54Z"}, "to"),  # its default start would be before year 1
    ("mrr", {"from": "9999-01-01T00:00:00Z"}, "from"),
    ("payment-summary", {"currency": "usd"}, "currency"),
    ("credits", {"currency": "DOLLARS"}, "currency"),
    ("revenue", {"group_by": "week"}, "group_by"),
    ("mrr", {"interval": "year"}, "interval"),
    ("forecast", {"days": "0"}, "days"),
    ("forecast", {"days": "10000"}, "days"),
    ("forecast", {"days": "ten"}, "days"),
    ("receivables", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
    ("usage", {"group_by": "colour"}, "group_by"),
    ("usage", {"customer": "0"}, "customer"),
])
def test_bad_parameters_answer_400_naming_the_parameter(reader, report, query, field):
    response = reader.get(URL.format(report), query)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request" and field in error["fields"]


@pytest.mark.django_db
def test_answers_are_the_selectors_figures(reader):
    history_build(seed=5, customers=10)
    period = ReportRange(start=datetime(2025, 1, 1, tzinfo=UTC), end=datetime(2026, 7, 1, tzinfo=UTC))
    body = reader.get(URL.format("revenue"), {**QUERY, "group_by": "plan"}).json()
    assert [(r["currency"], r["key"], r["net"]) for r in body["rows"]] == [
        (r.currency, r.key, r.net) for r in report_revenue(period=period, group_by="plan")]
    body = reader.get(URL.format("mrr"), QUERY).json()
    assert [p["mrr_end"] for p in body["points"]] == [p.mrr_end for p in report_mrr(period=period)]
    assert body["range"] == {"from": "2025-01-01T00:00:00Z", "to": "2026-07-01T00:00:00Z", "currency": None}


@pytest.mark.django_db
def test_usage_report_groups_every_customer_by_a_dimension(reader):
    customer = api_customer()
    MeterFactory(code="calls")
    customer.client.post("/api/v1/usage/events/", {"events": [
        {"meter": "calls", "idempotency_key": "1", "category": "books", "tokens_used": 10},
        {"meter": "calls", "idempotency_key": "2", "category": "books", "tokens_used": 5}]}, format="json")
    rows = reader.get(URL.format("usage"), {"group_by": "category"}).json()["rows"]
    assert [(r["key"], r["events"], r["tokens_used"]) for r in rows] == [("books", 2, 15)]


@pytest.mark.django_db
def test_the_range_defaults_to_the_twelve_months_before_next_month(reader):
    body = reader.get(URL.format("credits")).json()
    start, end = (datetime.fromisoformat(body["range"][k].replace("Z", "+00:00")) for k in ("from", "to"))
    assert (end.day, end.hour, start.day) == (1, 0, 1)
    assert (end.year - start.year) * 12 + end.month - start.month == 12
    assert len(body["months"]) == 12
