"""POST /api/v1/payments/: staff record cash, check and bank-transfer payments through the manual rail;
the payment detail shows what a payment paid for and the credits it awarded."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_support import api_customer, token_client
from billing_project.tests.threads import race
from core.audit import Actor
from credits.models import CreditLedgerEntry
from payments.billing.run import billing_run
from payments.models import (
    CreditPackOrder,
    Invoice,
    InvoiceLineKind,
    InvoiceStatus,
    Payment,
    PaymentCreditEntry,
    PaymentStatus,
)
from payments.services import LineSpec, invoice_create, invoice_finalize, subscription_start
from payments.services.credit_pack_orders import credit_pack_order_place
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.tests.factories import CustomerFactory, PlanFactory

URL = "/api/v1/payments/"
RECORDER = "payments.record_manual_payment"


def _open_invoice(customer, amount: int = 1500) -> Invoice:
    invoice = invoice_create(customer=customer, lines=[
        LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="Setup", unit_amount=Decimal(amount))])
    return invoice_finalize(invoice=invoice, actor=Actor.system("test"))


def _recorder() -> APIClient:
    return token_client(staff_user(RECORDER, "payments.view_payment", username="cashier"))


def _body(paid: Invoice, **fields) -> dict:
    body = {"customer": paid.customer_id, "amount": paid.amount_due, "currency": paid.currency,
            "method": "check", "reference": "cheque 1042", "description": "Setup fee", "invoice": paid.pk}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.django_db
def test_staff_record_a_cheque_that_pays_the_invoice_and_see_what_it_paid_for():
    invoice = _open_invoice(CustomerFactory(), amount=1500)

    response = _recorder().post(URL, _body(invoice), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["amount"], body["currency"], body["method"]) == ("succeeded", 1500, "USD", "check")
    assert (body["reference"], body["description"], body["invoice"]) == ("cheque 1042", "Setup fee", invoice.pk)
    assert body["paid_for"]["invoice"]["status"] == "paid"
    assert [line["description"] for line in body["paid_for"]["invoice"]["lines"]] == ["Setup"]
    assert body["paid_for"]["credit_pack_orders"] == [] and body["credits_awarded"] == []
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID


@pytest.mark.django_db
def test_a_payment_without_an_invoice_is_recorded_in_the_customers_currency():
    customer = CustomerFactory(currency="EUR")
    response = _recorder().post(URL, {"customer": customer.pk, "amount": 5000, "currency": "EUR",
                                      "method": "bank_transfer"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["paid_for"] == {"invoice": None, "credit_pack_orders": []}
    assert Payment.objects.get().currency == "EUR"


@pytest.mark.django_db
def test_the_payment_that_activates_a_subscription_shows_the_credits_it_awarded():
    plan = PlanFactory(amount=999, trial_days=0, credits_per_period=250)
    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=Actor.system("test"))

    created = _recorder().post(URL, _body(invoice, method="cash"), format="json").json()

    [entry] = CreditLedgerEntry.objects.filter(customer=subscription.customer)
    assert [(c["id"], c["kind"], c["amount"], c["balance_after"]) for c in created["credits_awarded"]] == [
        (entry.pk, "grant", 250, 250)]
    detail = _recorder().get(f"{URL}{created['id']}/").json()
    assert detail["credits_awarded"] == created["credits_awarded"]
    assert detail["paid_for"]["invoice"]["id"] == invoice.pk


@pytest.mark.django_db
def test_the_renewal_payment_shows_the_credit_pack_orders_its_invoice_billed():
    subscription = make_due_subscription(plan=PlanFactory(amount=1000, credits_per_period=0))
    order = credit_pack_order_place(customer=subscription.customer, pack="credits-100", actor=Actor.system("test"))
    # Placed inside the first period, so the renewal at its end bills it.
    CreditPackOrder.objects.filter(pk=order.pk).update(created_at=T0 + timedelta(days=3))
    billing_run(as_of=subscription.current_period_end)
    invoice = Invoice.objects.get(subscription=subscription)

    body = _recorder().post(URL, _body(invoice), format="json").json()

    assert [(o["id"], o["status"]) for o in body["paid_for"]["credit_pack_orders"]] == [(order.pk, "fulfilled")]
    assert [c["amount"] for c in body["credits_awarded"]] == [100]
    assert PaymentCreditEntry.objects.get().payment_id == body["id"]


@pytest.mark.django_db
def test_the_same_idempotency_key_records_once_and_replays_the_first_answer():
    invoice = _open_invoice(CustomerFactory(), amount=1000)
    client = _recorder()
    first = client.post(URL, _body(invoice, amount=400), format="json", HTTP_IDEMPOTENCY_KEY="cash-1")
    again = client.post(URL, _body(invoice, amount=400), format="json", HTTP_IDEMPOTENCY_KEY="cash-1")
    other = client.post(URL, _body(invoice, amount=300), format="json", HTTP_IDEMPOTENCY_KEY="cash-1")

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert Payment.objects.count() == 1
    assert Invoice.objects.get(pk=invoice.pk).amount_due == 600


@pytest.mark.django_db
def test_who_may_record_a_payment():
    invoice = _open_invoice(CustomerFactory())
    owner = api_customer()
    own_invoice = _open_invoice(owner.customer)
    answers = {
        "anonymous": APIClient().post(URL, _body(invoice), format="json"),
        "staff without the permission": token_client(staff_user("payments.view_payment", "payments.refund_payment",
                                                                username="refunder")).post(URL, _body(invoice),
                                                                                           format="json"),
        "the customer, for itself": owner.client.post(URL, _body(own_invoice), format="json"),
    }
    assert {who: r.status_code for who, r in answers.items()} == {
        "anonymous": 401, "staff without the permission": 403, "the customer, for itself": 403}
    assert not Payment.objects.exists()
    assert owner.client.get(URL).json()["results"] == []


@pytest.mark.django_db
def test_customers_read_only_their_own_payments_with_the_detail():
    owner, other = api_customer(), api_customer()
    mine = _recorder().post(URL, _body(_open_invoice(owner.customer)), format="json").json()
    theirs = _recorder().post(URL, _body(_open_invoice(other.customer)), format="json").json()

    assert [p["id"] for p in owner.client.get(URL).json()["results"]] == [mine["id"]]
    detail = owner.client.get(f"{URL}{mine['id']}/")
    assert detail.status_code == 200 and detail.json()["paid_for"]["invoice"]["id"] == mine["invoice"]
    assert owner.client.get(f"{URL}{theirs['id']}/").status_code == 404


def _bad_inputs(invoice: Invoice, other: Invoice, draft: Invoice) -> list[tuple[dict, str]]:
    return [
        (_body(invoice, customer=None), "customer"),
        (_body(invoice, customer=987654321), "customer"),
        (_body(invoice, amount=0), "amount"),
        (_body(invoice, amount=-5), "amount"),
        (_body(invoice, amount=2**63), "amount"),
        (_body(invoice, amount="12.50"), "amount"),
        (_body(invoice, amount=invoice.amount_due + 1), "amount"),
        (_body(invoice, currency="EUR"), "currency"),
        (_body(invoice, currency="US"), "currency"),
        (_body(invoice, method="stripe"), "method"),
        (_body(invoice, method="paypal"), "method"),
        (_body(invoice, reference="x" * 256), "reference"),
        (_body(invoice, description="x" * 501), "description"),
        (_body(invoice, invoice=987654321), "invoice"),
        (_body(invoice, invoice=other.pk), "invoice"),
        (_body(invoice, invoice=draft.pk), "invoice"),
        (_body(invoice, invoice="abc"), "invoice"),
    ]


@pytest.mark.django_db
def test_bad_input_is_a_400_naming_the_field_and_records_nothing():
    invoice = _open_invoice(CustomerFactory())
    other = _open_invoice(CustomerFactory())
    draft = invoice_create(customer=invoice.customer, lines=[
        LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="x", unit_amount=Decimal(10))])
    client = _recorder()
    wrong = []
    for body, field in _bad_inputs(invoice, other, draft):
        response = client.post(URL, body, format="json")
        if response.status_code != 400 or field not in response.json()["error"]["fields"]:
            wrong.append((field, body, response.status_code, response.content[:300]))
    assert wrong == []
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_paid_invoice_takes_no_further_payment():
    invoice = _open_invoice(CustomerFactory(), amount=800)
    client = _recorder()
    assert client.post(URL, _body(invoice), format="json").status_code == 201
    again = client.post(URL, _body(invoice), format="json")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invoice_not_payable"
    assert again.json()["error"]["fields"] == {"invoice": ["A paid invoice takes no payment."]}


@pytest.mark.django_db(transaction=True)
def test_two_payments_racing_on_one_invoice_never_overpay_it():
    invoice = _open_invoice(CustomerFactory(), amount=1000)
    clients = [_recorder(), token_client(staff_user(RECORDER, username="second-cashier"))]

    outcome = race([lambda c=c: c.post(URL, _body(invoice, amount=700), format="json") for c in clients],
                   join_timeout=60)

    assert outcome.errors == []
    assert sorted(r.status_code for r in outcome.results) == [201, 400]
    [refused] = [r for r in outcome.results if r.status_code == 400]
    assert refused.json()["error"]["code"] == "amount_exceeds_due"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (InvoiceStatus.OPEN, 700, 300)
    assert list(Payment.objects.values_list("amount", "status")) == [(700, PaymentStatus.SUCCEEDED)]


@pytest.mark.django_db(transaction=True)
def test_two_payments_covering_one_invoice_settle_it_once():
    plan = PlanFactory(amount=1000, trial_days=0, credits_per_period=40)
    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=Actor.system("test"))
    clients = [_recorder(), token_client(staff_user(RECORDER, username="second-cashier"))]

    outcome = race([lambda c=c: c.post(URL, _body(invoice, amount=500), format="json") for c in clients],
                   join_timeout=60)

    assert outcome.errors == [] and sorted(r.status_code for r in outcome.results) == [201, 201]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (InvoiceStatus.PAID, 1000, 0)
    # The payment that covered the rest awarded the plan's credits, once.
    assert sorted(len(r.json()["credits_awarded"]) for r in outcome.results) == [0, 1]
    assert CreditLedgerEntry.objects.filter(customer=subscription.customer).count() == 1


@pytest.mark.django_db
def test_the_payment_detail_reads_in_a_constant_number_of_queries():
    client = _recorder()

    def detail_queries(line_count: int) -> int:
        customer = CustomerFactory()
        invoice = invoice_create(customer=customer, lines=[
            LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description=f"Line {n}", unit_amount=Decimal(100))
            for n in range(line_count)])
        invoice = invoice_finalize(invoice=invoice, actor=Actor.system("test"))
        payment = client.post(URL, _body(invoice), format="json").json()
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"{URL}{payment['id']}/").status_code == 200
        return len(queries)

    assert detail_queries(1) == detail_queries(30)
