"""`?format=csv` and `Accept: text/csv` on every report endpoint: the JSON answer's rows as a streamed CSV
attachment, with the same filters, formula-looking text neutralised, and errors still JSON."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_support import api_customer, token_client
from reports.tests.history import history_build
from subscriptions.count_rollup_rebuild import subscription_counts_rebuild
from subscriptions.models import Subscription, SubscriptionEvent, SubscriptionEventKind, SubscriptionStatus
from subscriptions.periods import add_months
from subscriptions.tests.factories import CustomerFactory, PlanFactory
from usage.models import UsageEvent
from usage.tests.factories import MeterFactory

URL = "/api/v1/reports/{}/"
QUERY = {"from": "2025-02-10T06:00:00Z", "to": "2026-05-01T00:00:00Z"}
# (endpoint, extra query, the JSON key holding the rows, the file's name part)
REPORTS = [("payment-summary", {}, "rows", "payment-summary"), ("revenue", {"group_by": "plan"}, "rows",
           "revenue-by-plan"), ("mrr", {}, "points", "mrr"), ("churn", {}, "rows", "churn"),
           ("receivables", {}, "rows", "receivables"), ("credits", {}, "months", "credits"),
           ("usage", {"group_by": "meter"}, "rows", "usage-by-meter"),
           ("usage", {"group_by": "endpoint"}, "rows", "usage-by-endpoint")]


@pytest.fixture
def reader():
    return token_client(staff_user("reports.view_reports", username="csv-reader"))


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def _flat(row: dict) -> dict:
    flat = {}
    for key, value in row.items():
        flat.update(_flat(value) if isinstance(value, dict) else {key: value})
    return flat


def _same(cell: str, value) -> bool:
    if value is None:
        return cell == ""
    if isinstance(value, int):
        return int(cell) == value
    try:
        return Decimal(cell) == Decimal(value)
    except ArithmeticError:
        return cell == str(value)


@pytest.mark.django_db
@pytest.mark.parametrize(("report", "extra", "rows_key", "name"), REPORTS)
def test_csv_rows_are_the_json_rows(reader, report, extra, rows_key, name):
    history = history_build(seed=17, customers=10)
    meter = MeterFactory()
    for n, customer in enumerate(history.customers[:4]):
        UsageEvent.objects.create(customer=customer, meter=meter, quantity=Decimal("1.5") * n, idempotency_key=f"k{n}",
                                  occurred_at=datetime(2025, 6, 1, tzinfo=UTC), cost=Decimal("0.125") * n,
                                  endpoint=f"=cmd{n}")
    query = {**QUERY, **extra}
    expected = [_flat(row) for row in reader.get(URL.format(report), query).json()[rows_key]]
    response = reader.get(URL.format(report), {**query, "format": "csv"})
    rows = _csv(response)
    # Receivables are a figure at `to`; the others cover [from, to).
    span = "20260501T000000Z" if report == "receivables" else "20250210T060000Z-20260501T000000Z"
    assert response["Content-Disposition"] == f'attachment; filename="report-{name}-{span}.csv"'
    assert len(rows) == len(expected) and expected
    for got, want in zip(rows, expected, strict=True):
        if want.get("key", "").startswith("="):
            want["key"] = "'" + want["key"]
        assert set(got) == set(want)
        assert all(_same(got[key], want[key]) for key in want), (got, want)


@pytest.mark.django_db
def test_accept_text_csv_negotiates_csv_and_filters_apply(reader):
    history_build(seed=3, customers=10)
    rows = _csv(reader.get(URL.format("mrr"), {**QUERY, "currency": "EUR"}, HTTP_ACCEPT="text/csv"))
    assert rows and {row["currency"] for row in rows} == {"EUR"}
    assert all(int(r["mrr_end"]) - int(r["mrr_start"]) == sum(int(r[m]) for m in
               ("new", "expansion", "contraction", "churned", "reactivated")) for r in rows)


@pytest.mark.django_db
def test_subscription_counts_csv_neutralises_formulas_and_quotes_text(reader):
    plan = PlanFactory(code='=HYPERLINK("http://x"),"a"', currency="USD")
    start = datetime(2025, 3, 1, tzinfo=UTC)
    sub = Subscription.objects.create(customer=CustomerFactory(), plan=plan, status=SubscriptionStatus.ACTIVE,
                                      billing_cycle_anchor=start, current_period_start=start,
                                      current_period_end=add_months(start, 1))
    event = SubscriptionEvent.objects.create(subscription=sub, kind=SubscriptionEventKind.CREATED,
                                             to_status=SubscriptionStatus.ACTIVE, to_plan=plan)
    SubscriptionEvent.objects.filter(pk=event.pk).update(created_at=start)
    subscription_counts_rebuild()  # written straight into the table, past the service that keeps the rollup
    response = reader.get(URL.format("subscriptions"), {**QUERY, "format": "csv"})
    assert response["Content-Disposition"] == 'attachment; filename="report-subscriptions-20260501T000000Z.csv"'
    rows = _csv(response)
    assert {"kind": "plan", "key": "'" + plan.code, "currency": "USD", "count": "1"} in rows
    assert {"kind": "status", "key": "active", "currency": "", "count": "1"} in rows


@pytest.mark.django_db
def test_forecast_csv_names_its_days(reader):
    response = reader.get(URL.format("forecast"), {"days": 7, "format": "csv"})
    assert response["Content-Disposition"].startswith('attachment; filename="report-forecast-7-days-')
    assert _csv(response) == []


@pytest.mark.django_db
def test_bad_parameters_answer_json_errors_even_when_csv_is_asked(reader):
    response = reader.get(URL.format("revenue"), {"group_by": "planet", "format": "csv"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "group_by" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_customers_are_still_told_reports_do_not_exist_in_csv():
    response = api_customer().client.get(URL.format("mrr"), {"format": "csv"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
