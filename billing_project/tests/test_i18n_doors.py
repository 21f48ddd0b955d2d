"""The reader's language at every door: the admin (switcher, right to left), the printable invoice, the
emails and the API's error messages (customer's preferred language, Accept-Language per request)."""

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.utils import translation

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_support import staff_client, token_client
from core.tests.jobs_support import jobs_run_queued
from payments.billing.run import billing_run
from payments.emails import INVOICES_FINALIZED_TASK
from payments.invoice_html import invoice_render_html
from payments.models import Invoice
from payments.tests.conftest import make_due_subscription
from subscriptions.tests.factories import CustomerFactory, PlanFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩٬٫", "0123456789,.")

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice():
    customer = CustomerFactory(name="Saba Trading", name_ar="سبأ للتجارة", email="saba@example.ye", currency="YER",
                               preferred_language="ar")
    plan = PlanFactory(name="Pro", name_ar="الاحترافية", amount=150000, currency="YER")
    make_due_subscription(customer=customer, plan=plan)
    billing_run(as_of=FEB_28)
    return Invoice.objects.get(customer=customer)


def _figures(html: str) -> list[str]:
    """Every amount of a page, as Latin digits: the same invoice in either language has the same ones."""
    return [m.translate(ARABIC_DIGITS) for m in re.findall(r"([\d٠-٩٬٫,.]+) YER", html)]


def test_an_invoice_prints_in_the_customers_language_right_to_left_with_the_same_figures(invoice):
    arabic = invoice_render_html(invoice=invoice)
    english = invoice_render_html(invoice=invoice, language="en")
    assert '<html lang="ar" dir="rtl">' in arabic and '<html lang="en" dir="ltr">' in english
    assert "المبلغ المستحق" in arabic and "سبأ للتجارة" in arabic and "الإجمالي" in arabic
    assert "Amount due" in english and "Saba Trading" in english
    assert f'<bdi dir="ltr">{invoice.number}</bdi>' in arabic
    assert "١٥٠٬٠٠٠ YER" in arabic and "150,000 YER" in english
    assert _figures(arabic) == _figures(english) and len(_figures(english)) >= 4


def test_the_print_page_takes_the_language_from_the_query_else_the_customer(client, invoice):
    client.force_login(staff_user("payments.view_invoice"))
    url = f"/invoices/{invoice.pk}/print/"
    assert 'dir="rtl"' in client.get(url).content.decode()
    assert 'dir="ltr"' in client.get(url, {"language": "en"}).content.decode()


def test_emails_go_out_in_the_customers_language(invoice):
    mail.outbox.clear()
    jobs_run_queued(task_name=INVOICES_FINALIZED_TASK)
    [message] = mail.outbox
    assert message.subject.startswith("الفاتورة")
    assert "مرحبًا سبأ للتجارة،" in message.body and "\u2066١٥٠٬٠٠٠ YER\u2069" in message.body
    html = message.alternatives[0][0]
    assert 'dir="rtl"' in html and "عرض الفاتورة وطباعتها" in html


def test_api_errors_speak_the_preferred_language_unless_accept_language_says_otherwise(invoice):
    client = token_client(invoice.customer.user)
    body = client.get("/api/v1/invoices/999999/").json()["error"]
    assert body["code"] == "not_found" and re.search("[\u0600-\u06ff]", body["message"])
    english = client.get("/api/v1/invoices/999999/", HTTP_ACCEPT_LANGUAGE="en").json()["error"]
    assert english["code"] == "not_found" and english["message"].isascii()
    response = client.post("/api/v1/credits/debit/", {"amount": 5}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    arabic = client.post("/api/v1/credits/debit/", {"amount": 5}, format="json", HTTP_ACCEPT_LANGUAGE="ar")
    assert response.status_code == arabic.status_code
    assert response.json()["error"]["code"] == arabic.json()["error"]["code"]
    assert re.search("[\u0600-\u06ff]", arabic.json()["error"]["message"])


def test_a_customer_sets_its_preferred_language_through_the_api():
    customer = CustomerFactory(preferred_language="en")
    client = token_client(customer.user)
    response = client.patch("/api/v1/customers/me/", {"preferred_language": "ar", "name_ar": "مؤسسة عدن"},
                            format="json")
    if response.status_code == 405:  # `me` is read-only: the customer's own detail route
        response = client.patch(f"/api/v1/customers/{customer.pk}/", {"preferred_language": "ar",
                                                                      "name_ar": "مؤسسة عدن"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["preferred_language"] == "ar"
    customer.refresh_from_db()
    assert (customer.preferred_language, customer.name_ar) == ("ar", "مؤسسة عدن")
    refused = client.patch(f"/api/v1/customers/{customer.pk}/", {"preferred_language": "fr"}, format="json")
    assert refused.status_code == 400 and "preferred_language" in refused.json()["error"]["fields"]
    assert refused.json()["error"]["code"] == "invalid"
    assert refused.json()["error"]["message"].startswith("مدخلات غير صالحة")  # the new preference, at once


def test_search_finds_a_customer_by_either_script(client):
    saba = CustomerFactory(name="Saba Trading", name_ar="سبأ للتجارة", user=None)
    CustomerFactory(name="Aden Port", user=None)
    api = staff_client()
    assert {r["id"] for r in api.get("/api/v1/customers/", {"search": "سبأ"}).json()["results"]} == {saba.pk}
    client.force_login(staff_user("subscriptions.view_customer"))
    page = client.get("/admin/subscriptions/customer/", {"q": "للتجارة"}).content.decode()
    assert "Saba Trading" in page and "Aden Port" not in page


def test_staff_switch_the_admin_to_arabic_and_it_is_remembered(client):
    client.force_login(staff_user("subscriptions.view_customer"))
    page = client.get("/admin/").content.decode()
    assert 'dir="ltr"' in page and 'action="/i18n/setlang/"' in page
    response = client.post("/i18n/setlang/", {"language": "ar", "next": "/admin/"})
    assert response.status_code == 302 and response.cookies["django_language"].value == "ar"
    page = client.get("/admin/").content.decode()
    assert '<html lang="ar" dir="rtl">' in page and "مكتب الفوترة الخلفي" in page
    assert "rtl.css" in page  # Django's own right-to-left admin styles
    translation.activate("en")
