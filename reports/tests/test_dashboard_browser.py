"""The finance reports page in headless Chromium with the network closed: every chart is drawn by the
vendored Chart.js from our own static files, with the seeded history's figures."""

from urllib.parse import urlsplit

import pytest
from django.test import Client
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.test_api_docs_browser import DOCS_HOST, _requested_urls, browser  # noqa: F401 - fixture
from reports.tests.history import history_build

CHARTS = ("mrr", "revenue", "plans", "churn", "receivables")
# Pixels a drawn chart paints (axes, labels, bars or lines); an empty canvas has none.
_PAINTED_PIXELS = """
const canvas = document.getElementById(arguments[0]);
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0;
for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { painted++; } }
return painted;
"""


@pytest.mark.django_db(transaction=True)
def test_the_reports_page_draws_every_chart_offline(browser, live_server, settings):  # noqa: F811
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, DOCS_HOST]
    history_build(seed=23, customers=16)
    login = Client()
    login.force_login(staff_user("reports.view_reports", username="finance-reader"))
    base = f"http://{DOCS_HOST}:{urlsplit(live_server.url).port}"
    browser.get(f"{base}/admin/login/")
    session = login.cookies[settings.SESSION_COOKIE_NAME].value
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": session, "path": "/"})
    browser.get(f"{base}/admin/reports/?start=2025-07-01&end=2026-07-01&currency=USD")

    WebDriverWait(browser, 60).until(lambda d: all(
        d.find_element(By.ID, f"chart-{c}").get_attribute("data-rendered") for c in CHARTS))
    drawn = {c: int(browser.find_element(By.ID, f"chart-{c}").get_attribute("data-rendered")) for c in CHARTS}
    assert all(drawn.values()), drawn  # each chart has at least one dataset
    painted = {c: browser.execute_script(_PAINTED_PIXELS, f"chart-{c}") for c in CHARTS}
    assert all(n > 500 for n in painted.values()), painted
    rows = browser.find_elements(By.CSS_SELECTOR, "#report-mrr tbody tr")
    assert len(rows) == 12
    urls = [u for u in _requested_urls(browser) if urlsplit(u).scheme in ("http", "https")]
    assert any(u.endswith("/static/reports/vendor/chart.umd.min.js") for u in urls)
    assert [u for u in urls if urlsplit(u).hostname != DOCS_HOST] == []
