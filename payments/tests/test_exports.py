"""CSV exports of invoices, payments and refunds: from the API (the list's filters, customers get their
own rows) and from the admin (an action on the selected or filtered rows)."""

import csv
import io

import pytest

from billing_project.tests.admin_helpers import post_action, staff_user
from billing_project.tests.api_support import api_customer, token_client
from payments.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from payments.tests.factories import InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def books():
    mine, other = api_customer(), api_customer()
    for customer in (mine.customer, other.customer):
        InvoiceFactory(customer=customer, status=InvoiceStatus.OPEN, number=f"INV-X-{customer.pk}-1", total=999,
                       amount_due=999)
        InvoiceFactory(customer=customer, status=InvoiceStatus.PAID, number=f"INV-X-{customer.pk}-2", total=500)
        paid = PaymentFactory(customer=customer, method=PaymentMethod.CASH, status=PaymentStatus.PARTIALLY_REFUNDED,
                              amount=500, amount_refunded=200, reference="=cmd|' /C calc'!A0")
        PaymentFactory(customer=customer, method=PaymentMethod.CHECK, status=PaymentStatus.FAILED, amount=300)
        Refund.objects.create(payment=paid, provider=paid.provider, amount=200, currency=paid.currency,
                              status=RefundStatus.SUCCEEDED)
    return mine, other


def test_staff_export_with_the_list_filters(books):
    client = token_client(staff_user("payments.view_invoice", "payments.view_payment", "payments.view_refund",
                                     username="exporter"))
    rows = _csv(client.get("/api/v1/invoices/export/", {"status": "open"}))
    assert {r["status"] for r in rows} == {"open"} and len(rows) == 2
    assert rows[0]["total"] == "999" and rows[0]["number"].startswith("INV-X-")
    payments = _csv(client.get("/api/v1/payments/export/", {"method": "cash"}))
    assert [(p["method"], p["amount"], p["amount_refunded"]) for p in payments] == [("cash", "500", "200")] * 2
    assert payments[0]["reference"] == "'=cmd|' /C calc'!A0"  # a formula a spreadsheet would run, defused
    refunds = _csv(client.get("/api/v1/payments/refunds/export/", {"method": "cash"}))
    assert [(r["amount"], r["status"], r["payment_method"]) for r in refunds] == [("200", "succeeded", "cash")] * 2
    assert _csv(client.get("/api/v1/payments/refunds/export/", {"method": "check"})) == []


def test_a_customer_exports_only_its_own_rows(books):
    mine, _ = books
    rows = _csv(mine.client.get("/api/v1/invoices/export/"))
    assert {int(r["customer_id"]) for r in rows} == {mine.customer.pk} and len(rows) == 2
    refunds = _csv(mine.client.get("/api/v1/payments/refunds/export/"))
    assert {int(r["customer_id"]) for r in refunds} == {mine.customer.pk}


def test_a_bad_filter_answers_400_in_the_error_shape(books):
    mine, _ = books
    response = mine.client.get("/api/v1/payments/export/", {"status": "lost"})
    assert response.status_code == 400 and "status" in response.json()["error"]["fields"]


def test_admin_actions_export_the_selected_rows(books, admin_client):
    invoices = Invoice.objects.filter(status=InvoiceStatus.PAID)
    response = post_action(admin_client, Invoice, "export_csv", invoices, follow=False)
    assert sorted(r["number"] for r in _csv(response)) == sorted(invoices.values_list("number", flat=True))
    payments = Payment.objects.filter(method=PaymentMethod.CHECK)
    assert len(_csv(post_action(admin_client, Payment, "export_csv", payments, follow=False))) == 2
    refunds = Refund.objects.all()
    assert len(_csv(post_action(admin_client, Refund, "export_csv", refunds, follow=False))) == 2


def test_the_export_action_needs_only_the_view_permission(books, client):
    client.force_login(staff_user("payments.view_payment", username="viewer"))
    payments = Payment.objects.all()
    assert len(_csv(post_action(client, Payment, "export_csv", payments, follow=False))) == 4
