from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing_project.tests.api_support import api_customer, staff_client
from core.audit import Actor
from payments.models import InvoiceLineKind, Payment, PaymentMethod, PaymentStatus
from payments.services import LineSpec, invoice_create, invoice_finalize
from payments.tests.factories import PaymentFactory
from subscriptions.models import Subscription
from subscriptions.tests.factories import PlanFactory


def _open_invoice(customer, amount: int = 1500):
    invoice = invoice_create(customer=customer, lines=[
        LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="Setup", unit_amount=Decimal(amount))])
    return invoice_finalize(invoice=invoice, actor=Actor.system("test"))


@pytest.mark.django_db
def test_subscribing_to_a_paid_plan_opens_its_first_invoice():
    caller = api_customer(subscribed=False)
    paid = PlanFactory(amount=2500, trial_days=0)
    response = caller.client.post("/api/v1/subscriptions/", {"plan": paid.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["subscription"]["status"] == "incomplete"
    assert body["invoice"]["status"] == "open"
    assert body["invoice"]["total"] == 2500
    assert [line["amount"] for line in body["invoice"]["lines"]] == [2500]


@pytest.mark.django_db
def test_cancel_at_period_end_then_resume_then_cancel_now():
    caller = api_customer()
    base = f"/api/v1/subscriptions/{caller.subscription.pk}"
    scheduled = caller.client.post(f"{base}/cancel/", {"at_period_end": True}, format="json").json()
    assert (scheduled["status"], scheduled["cancel_at_period_end"]) == ("active", True)
    resumed = caller.client.post(f"{base}/resume/", {}, format="json").json()
    assert resumed["cancel_at_period_end"] is False
    canceled = caller.client.post(f"{base}/cancel/", {"reason": "moving on"}, format="json").json()
    assert canceled["status"] == "canceled"


@pytest.mark.django_db
def test_pause_and_resume():
    caller = api_customer()
    base = f"/api/v1/subscriptions/{caller.subscription.pk}"
    assert caller.client.post(f"{base}/pause/", {}, format="json").json()["status"] == "paused"
    assert caller.client.post(f"{base}/resume/", {}, format="json").json()["status"] == "active"


@pytest.mark.django_db
def test_change_plan_returns_the_proration_it_applied():
    caller = api_customer(amount=1000)
    Subscription.objects.filter(pk=caller.subscription.pk).update(
        current_period_start=timezone.now() - timedelta(days=15),
        current_period_end=timezone.now() + timedelta(days=15))
    bigger = PlanFactory(amount=3000)
    response = caller.client.post(f"/api/v1/subscriptions/{caller.subscription.pk}/change-plan/",
                                  {"plan": bigger.pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["effective"] == "immediate"
    assert 990 <= body["proration_amount"] <= 1010  # half a period of the 2000 difference
    assert body["invoice"]["total"] == body["proration_amount"]
    assert body["subscription"]["plan"]["id"] == bigger.pk

    smaller = PlanFactory(amount=500)
    later = caller.client.post(f"/api/v1/subscriptions/{caller.subscription.pk}/change-plan/",
                               {"plan": smaller.pk}, format="json").json()
    assert (later["effective"], later["proration_amount"], later["invoice"]) == ("period_end", 0, None)


@pytest.mark.django_db
def test_subscriptions_filter_by_status_and_plan_code():
    caller = api_customer()
    found = caller.client.get(f"/api/v1/subscriptions/?status=active&plan_code={caller.plan.code}").json()
    assert [s["id"] for s in found["results"]] == [caller.subscription.pk]
    assert caller.client.get("/api/v1/subscriptions/?status=canceled").json()["results"] == []


@pytest.mark.django_db
def test_invoices_are_read_by_their_customer_and_voided_or_marked_paid_by_staff():
    caller = api_customer()
    first, second = _open_invoice(caller.customer), _open_invoice(caller.customer, 700)
    listed = caller.client.get("/api/v1/invoices/?status=open&total_min=1000").json()["results"]
    assert [i["id"] for i in listed] == [first.pk]
    assert caller.client.post(f"/api/v1/invoices/{first.pk}/void/", {}, format="json").status_code == 403

    staff = staff_client()
    assert staff.post(f"/api/v1/invoices/{first.pk}/void/", {"reason": "duplicate"},
                      format="json").json()["status"] == "void"
    assert staff.post(f"/api/v1/invoices/{second.pk}/mark-paid/", {}, format="json").json()["status"] == "paid"
    again = staff.post(f"/api/v1/invoices/{first.pk}/void/", {}, format="json")
    assert again.status_code == 409


@pytest.mark.django_db
def test_payments_are_listed_with_filters_and_refunded_by_staff():
    caller = api_customer()
    cash = PaymentFactory(customer=caller.customer, method=PaymentMethod.CASH, status=PaymentStatus.SUCCEEDED,
                          amount=2000)
    PaymentFactory(customer=caller.customer, method=PaymentMethod.STRIPE, status=PaymentStatus.FAILED, amount=500)
    found = caller.client.get("/api/v1/payments/?method=cash&amount_min=1000&currency=usd").json()["results"]
    assert [p["id"] for p in found] == [cash.pk]
    assert caller.client.post(f"/api/v1/payments/{cash.pk}/refund/", {}, format="json").status_code == 403

    staff = staff_client()
    refund = staff.post(f"/api/v1/payments/{cash.pk}/refund/", {"amount": 500}, format="json",
                        HTTP_IDEMPOTENCY_KEY="r1")
    assert refund.status_code == 201, refund.content
    assert refund.json()["amount"] == 500
    replay = staff.post(f"/api/v1/payments/{cash.pk}/refund/", {"amount": 500}, format="json",
                        HTTP_IDEMPOTENCY_KEY="r1")
    assert replay.json() == refund.json()
    assert Payment.objects.get(pk=cash.pk).amount_refunded == 500
    too_much = staff.post(f"/api/v1/payments/{cash.pk}/refund/", {"amount": 5000}, format="json")
    assert too_much.status_code == 400
    assert too_much.json()["error"]["details"] == {"refundable": 1500}


@pytest.mark.django_db
def test_the_printable_invoice_is_html_for_its_owner_and_staff_and_404_for_others():
    caller = api_customer()
    invoice = _open_invoice(caller.customer, amount=4200)
    path = f"/api/v1/invoices/{invoice.pk}/html/"

    mine = caller.client.get(path)
    as_staff = staff_client().get(path)
    other = api_customer().client.get(path)

    assert mine.status_code == 200 and mine["Content-Type"] == "text/html; charset=utf-8"
    page = mine.content.decode()
    assert page.lstrip().lower().startswith("<!doctype html") and invoice.number in page and "42.00" in page
    assert as_staff.status_code == 200 and as_staff.content == mine.content
    assert other.status_code == 404 and other.json()["error"]["type"] == "not_found"
    assert caller.client.get("/api/v1/invoices/424242/html/").json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_the_printable_invoice_runs_the_same_queries_for_2_or_40_lines(django_assert_num_queries):
    caller = api_customer()
    caller.client.get("/api/v1/plans/")  # caches the caller's token and plan limits, as in steady use
    counts = []
    for size in (2, 40):
        invoice = invoice_create(customer=caller.customer, lines=[
            LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description=f"Line {n}", unit_amount=Decimal(100))
            for n in range(size)])
        PaymentFactory(customer=caller.customer, invoice=invoice, method=PaymentMethod.CASH,
                       status=PaymentStatus.SUCCEEDED)
        # The invoice with its customer and plan, its lines, its payments (the token's user is cached).
        with django_assert_num_queries(3) as captured:
            response = caller.client.get(f"/api/v1/invoices/{invoice.pk}/html/")
        assert response.status_code == 200 and f"Line {size - 1}" in response.content.decode()
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
