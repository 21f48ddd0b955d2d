"""Seen, not assumed: the admin's customer list, the billing dashboard, the finance reports charts and a
printed invoice rendered by headless Chromium in Arabic (right to left, translated headings, the same
totals as the English page) and in English.

With SCREENSHOTS_DIR set, the screenshots are also written there as <page>-<language>.png: the ones in
docs/screenshots/ come from `SCREENSHOTS_DIR=docs/screenshots pytest billing_project/tests/test_i18n_browser.py`.
"""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from billing_project.tests.admin_helpers import staff_user, view_permissions
from billing_project.tests.test_api_docs_browser import DOCS_HOST, _requested_urls, browser  # noqa: F401 - fixture
from core.money import format_money
from payments.billing.run import billing_run
from payments.models import Invoice
from payments.tests.conftest import make_due_subscription
from subscriptions.tests.factories import CustomerFactory, PlanFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

HEADINGS = {
    "customers": {"en": "Select customer to view", "ar": "اختر العميل للاستعراض"},
    "dashboard": {"en": "Billing dashboard", "ar": "لوحة الفوترة"},
    "reports": {"en": "Finance reports", "ar": "التقارير المالية"},
    "invoice": {"en": "Invoice", "ar": "الفاتورة"},
}


@pytest.fixture
def billed():
    """An Arabic-speaking customer in Yemen billed in YER beside an English-speaking one in YER too."""
    plan = PlanFactory(name="Pro", name_ar="الاحترافية", amount=150000, currency="YER")
    saba = CustomerFactory(name="Saba Trading", name_ar="سبأ للتجارة", currency="YER", preferred_language="ar")
    aden = CustomerFactory(name="Aden Port Services", currency="YER")
    for customer in (saba, aden):
        make_due_subscription(customer=customer, plan=plan)
    billing_run(as_of=FEB_28)
    return Invoice.objects.get(customer=saba)


def _signed_in(browser, live_server, settings, language: str) -> str:  # noqa: F811
    login = Client()
    login.force_login(staff_user("reports.view_reports", *view_permissions("subscriptions", "payments"),
                                 username=f"reader-{language}"))
    base = f"http://{DOCS_HOST}:{urlsplit(live_server.url).port}"
    browser.get(f"{base}/admin/login/")
    browser.delete_all_cookies()
    session = login.cookies[settings.SESSION_COOKIE_NAME].value
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": session, "path": "/"})
    browser.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "path": "/"})
    return base


def _shot(driver, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 1000
    if target := os.environ.get("SCREENSHOTS_DIR"):
        shutil.copy(path, Path(target) / path.name)


def _page(driver) -> dict:
    html = driver.find_element(By.TAG_NAME, "html")
    return {"lang": html.get_attribute("lang"), "dir": html.get_attribute("dir"),
            "h1": driver.find_element(By.TAG_NAME, "h1").text}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["ar", "en"])
def test_admin_dashboard_charts_and_invoice_render_in_the_readers_language(browser, live_server, settings,  # noqa: F811
                                                                            billed, tmp_path, language):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, DOCS_HOST]
    direction = "rtl" if language == "ar" else "ltr"
    browser.set_window_size(1100, 760)
    base = _signed_in(browser, live_server, settings, language)

    browser.get(f"{base}/admin/subscriptions/customer/")
    page = _page(browser)
    assert (page["lang"], page["dir"]) == (language, direction) and page["h1"] == HEADINGS["customers"][language]
    listed = browser.find_element(By.ID, "result_list").text
    assert "سبأ للتجارة" in listed and "Saba Trading" in listed
    if language == "ar":  # Django's right-to-left admin styles are loaded and applied
        assert browser.execute_script("return getComputedStyle(document.body).direction") == "rtl"
    _shot(browser, tmp_path, f"admin-customers-{language}")

    browser.get(f"{base}/admin/dashboard/")
    page = _page(browser)
    assert (page["dir"], page["h1"]) == (direction, HEADINGS["dashboard"][language])
    mrr = browser.find_element(By.CSS_SELECTOR, "#dashboard-mrr td.figure").text
    assert mrr == format_money(300000, "YER", language=language)  # two subscriptions of 150,000 rials
    _shot(browser, tmp_path, f"dashboard-{language}")

    browser.get(f"{base}/admin/reports/?start=2026-01-01&end=2026-04-01&currency=YER")
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "chart-mrr").get_attribute("data-rendered"))
    page = _page(browser)
    assert (page["dir"], page["h1"]) == (direction, HEADINGS["reports"][language])
    _shot(browser, tmp_path, f"reports-{language}")

    browser.get(f"{base}/invoices/{billed.pk}/print/?language={language}")
    page = _page(browser)
    assert (page["lang"], page["dir"]) == (language, direction)
    assert page["h1"].startswith(HEADINGS["invoice"][language]) and billed.number in page["h1"]
    total = browser.find_element(By.ID, "invoice-total").text
    assert total == format_money(billed.total, "YER", language=language)
    assert browser.find_element(By.CLASS_NAME, "customer-name").text == (
        "سبأ للتجارة" if language == "ar" else "Saba Trading")
    _shot(browser, tmp_path, f"invoice-{language}")

    outside = [u for u in _requested_urls(browser) if urlsplit(u).scheme in ("http", "https")
               and urlsplit(u).hostname != DOCS_HOST]
    assert outside == []
