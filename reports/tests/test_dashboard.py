"""The finance reports page in the admin: who may open it, its picker, and every chart as a table."""

from datetime import UTC, datetime

import pytest

from billing_project.tests.admin_helpers import staff_user
from core.money import format_money
from reports.selectors import ReportRange, report_mrr
from reports.tests.history import history_build

URL = "/admin/reports/"
QUERY = {"start": "2025-07-01", "end": "2026-07-01", "currency": "USD"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(client):
    client.force_login(staff_user("reports.view_reports", username="finance-reader"))
    return client


def test_staff_without_view_reports_are_refused(client):
    client.force_login(staff_user("payments.view_invoice", username="clerk"))
    assert client.get(URL).status_code == 403


def test_every_chart_is_also_a_table_of_the_report_figures(reader):
    history_build(seed=11, customers=16)
    page = reader.get(URL, QUERY).content.decode()
    for chart in ("mrr", "revenue", "plans", "churn", "receivables"):
        assert f'<canvas id="chart-{chart}"' in page and f'id="report-{chart}"' in page
    period = ReportRange(start=datetime(2025, 7, 1, tzinfo=UTC), end=datetime(2026, 7, 1, tzinfo=UTC), currency="USD")
    last = [p for p in report_mrr(period=period) if p.currency == "USD"][-1]
    assert f'<th scope="row">2026-06</th><td class="number"><bdi>{format_money(last.mrr_end, "USD")}</bdi></td>' in page
    assert 'id="report-charts" type="application/json"' in page
    assert "reports/vendor/chart.umd.min.js" in page


def test_the_picker_defaults_to_twelve_months_and_refuses_a_backward_range(reader):
    response = reader.get(URL)
    assert response.status_code == 200 and len(response.context["charts"]) == 5
    period = response.context["period"]
    assert (period.end.year - period.start.year) * 12 + period.end.month - period.start.month == 12
    bad = reader.get(URL, {"start": "2026-05-01", "end": "2026-01-01"})
    assert bad.status_code == 400 and "The end must be after the start." in bad.content.decode()
    assert reader.get(URL, {"currency": "usd"}).status_code == 400
    assert reader.get(URL, {"end": "0001-01-01"}).status_code == 400  # its default start would be before year 1


def test_the_dashboard_links_to_the_reports_for_those_who_may_read_them(reader, admin_client):
    assert 'href="/admin/reports/"' in admin_client.get("/admin/dashboard/").content.decode()
