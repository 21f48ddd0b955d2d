"""POST /api/v1/invoices/ and /finalize/: staff bill a one-off charge with hand-written lines and a note,
issue it, and it is collected like any invoice."""

import pytest
from rest_framework.test import APIClient

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_support import api_customer, token_client
from payments.models import BillingReason, Invoice, InvoiceLine, InvoiceStatus, InvoiceStatusChange
from subscriptions.tests.factories import CustomerFactory

URL = "/api/v1/invoices/"


def _billing_staff() -> APIClient:
    return token_client(staff_user("payments.add_invoice", "payments.finalize_invoice", "payments.view_invoice",
                                   "payments.record_manual_payment", username="billing-clerk"))


def _body(billed, **fields) -> dict:
    body = {"customer": billed.pk, "currency": billed.currency, "note": "Thank you for the workshop.",
            "lines": [{"description": "Setup fee", "quantity": 1, "unit_amount": 25000},
                      {"description": "Consulting (hours)", "quantity": "2.5", "unit_amount": 12001}]}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.django_db
def test_staff_create_a_draft_one_off_invoice_with_lines_rounded_once():
    customer = CustomerFactory()
    response = _billing_staff().post(URL, _body(customer), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["number"], body["billing_reason"]) == ("draft", None, BillingReason.MANUAL)
    assert body["note"] == "Thank you for the workshop."
    # 2.5 x 12001 = 30002.5, rounded half-up once: 30003.
    assert [(line["description"], line["amount"]) for line in body["lines"]] == [
        ("Setup fee", 25000), ("Consulting (hours)", 30003)]
    assert (body["subtotal"], body["total"], body["amount_due"]) == (55003, 55003, 55003)
    assert InvoiceLine.objects.filter(invoice_id=body["id"]).count() == 2


@pytest.mark.django_db
def test_finalize_issues_it_and_a_manual_payment_collects_it():
    client = _billing_staff()
    customer = CustomerFactory()
    draft = client.post(URL, _body(customer), format="json").json()

    issued = client.post(f"{URL}{draft['id']}/finalize/", {}, format="json")

    assert issued.status_code == 200, issued.content
    assert issued.json()["status"] == "open" and issued.json()["number"].startswith("INV-")
    again = client.post(f"{URL}{draft['id']}/finalize/", {}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "illegal_transition")
    paid = client.post("/api/v1/payments/", {"customer": customer.pk, "amount": 55003, "currency": "USD",
                                             "method": "bank_transfer", "invoice": draft["id"]}, format="json")
    assert paid.status_code == 201, paid.content
    assert Invoice.objects.get(pk=draft["id"]).status == InvoiceStatus.PAID
    assert list(InvoiceStatusChange.objects.filter(invoice_id=draft["id"]).order_by("id")
                .values_list("to_status", flat=True)) == ["open", "paid"]


@pytest.mark.django_db
def test_an_idempotent_create_makes_one_invoice():
    client, customer = _billing_staff(), CustomerFactory()
    first = client.post(URL, _body(customer), format="json", HTTP_IDEMPOTENCY_KEY="setup-fee-1")
    again = client.post(URL, _body(customer), format="json", HTTP_IDEMPOTENCY_KEY="setup-fee-1")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert Invoice.objects.count() == 1


@pytest.mark.django_db
def test_who_may_create_and_finalize():
    owner = api_customer()
    draft = _billing_staff().post(URL, _body(owner.customer), format="json").json()
    creator_only = token_client(staff_user("payments.add_invoice", username="drafter"))
    answers = {
        "anonymous create": APIClient().post(URL, _body(owner.customer), format="json").status_code,
        "customer create": owner.client.post(URL, _body(owner.customer), format="json").status_code,
        "customer finalize own": owner.client.post(f"{URL}{draft['id']}/finalize/", {}, format="json").status_code,
        "customer finalize other's": api_customer().client.post(f"{URL}{draft['id']}/finalize/", {},
                                                                 format="json").status_code,
        "drafter finalize": creator_only.post(f"{URL}{draft['id']}/finalize/", {}, format="json").status_code,
        "no-permission create": token_client(staff_user(username="nobody")).post(
            URL, _body(owner.customer), format="json").status_code,
    }
    assert answers == {"anonymous create": 401, "customer create": 403, "customer finalize own": 403,
                       "customer finalize other's": 404, "drafter finalize": 403, "no-permission create": 403}
    assert Invoice.objects.get().status == InvoiceStatus.DRAFT


def _bad_inputs(customer) -> list[tuple[dict, str]]:
    line = {"description": "x", "quantity": 1, "unit_amount": 100}
    return [
        (_body(customer, customer=None), "customer"),
        (_body(customer, customer=987654321), "customer"),
        (_body(customer, currency="EUR"), "currency"),
        (_body(customer, currency="EURO"), "currency"),
        (_body(customer, note="x" * 2001), "note"),
        (_body(customer, lines=None), "lines"),
        (_body(customer, lines=[]), "lines"),
        (_body(customer, lines=[line] * 101), "lines"),
        (_body(customer, lines=[{**line, "quantity": 0}]), "lines"),
        (_body(customer, lines=[{**line, "quantity": "-1"}]), "lines"),
        (_body(customer, lines=[{**line, "quantity": "0.0000001"}]), "lines"),
        (_body(customer, lines=[{**line, "quantity": "NaN"}]), "lines"),
        (_body(customer, lines=[{**line, "unit_amount": -1}]), "lines"),
        (_body(customer, lines=[{**line, "unit_amount": "1.5"}]), "lines"),
        (_body(customer, lines=[{**line, "description": ""}]), "lines"),
        (_body(customer, lines=[{**line, "description": "x" * 301}]), "lines"),
        (_body(customer, lines=[{**line, "quantity": "99999999999999", "unit_amount": 2**62}]), "lines"),
        (_body(customer, lines=[{**line, "unit_amount": 2**62}, {**line, "unit_amount": 2**62}]), "lines"),
        (_body(customer, lines=[{**line, "unit_amount": 0}]), "lines"),
        (_body(customer, lines="one"), "lines"),
    ]


@pytest.mark.django_db
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing():
    customer = CustomerFactory()
    client = _billing_staff()
    wrong = []
    for body, field in _bad_inputs(customer):
        response = client.post(URL, body, format="json")
        if response.status_code != 400 or field not in response.json()["error"]["fields"]:
            wrong.append((field, str(body)[:120], response.status_code, response.content[:300]))
    assert wrong == []
    assert not Invoice.objects.exists()
