"""No N+1: every list endpoint runs the same small number of queries for a page of 2 or of 40 rows."""

from decimal import Decimal

import pytest

from billing_project.tests.api_support import api_customer, staff_client
from core.audit import Actor
from credits.services import credit_grant
from payments.models import InvoiceLineKind, PaymentMethod, PaymentStatus
from payments.services import LineSpec, invoice_create
from payments.services.credit_pack_orders import credit_pack_order_place
from payments.tests.factories import PaymentFactory
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory
from usage.services import UsageEventInput, usage_events_record_batch
from usage.tests.factories import MeterFactory

LIST_PATHS = ["plans", "customers", "subscriptions", "invoices", "payments", "credits/ledger", "credits/grants",
              "usage/events", "meters", "credits/orders"]


def _populate(customers, per_customer: int = 1):
    meter, *_ = [MeterFactory() for _ in range(4)]
    for customer in customers:
        if not customer.subscriptions.exists():
            SubscriptionFactory(customer=customer, plan=PlanFactory())
        for n in range(per_customer):
            invoice_create(customer=customer, lines=[
                LineSpec(kind=InvoiceLineKind.SUBSCRIPTION, description="Plan", unit_amount=Decimal(999)),
                LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="Fix", unit_amount=Decimal(-100))])
            PaymentFactory(customer=customer, method=PaymentMethod.CASH, status=PaymentStatus.SUCCEEDED)
            credit_grant(customer=customer, amount=10 + n, source="purchase", actor=Actor.system("test"))
            credit_pack_order_place(customer=customer, pack="credits-100", actor=Actor.system("test"))
        usage_events_record_batch(customer=customer, events=[
            UsageEventInput(meter_code=meter.code, idempotency_key=f"e{n}") for n in range(per_customer)])


@pytest.mark.django_db
@pytest.mark.parametrize("path", LIST_PATHS)
def test_staff_lists_run_constant_queries_whatever_the_page_size(path, django_assert_max_num_queries):
    _populate([CustomerFactory() for _ in range(40)])
    client = staff_client()
    # The first request also reads which modules are on (remembered by the process for a moment).
    client.get(f"/api/v1/{path}/?page_size=1")
    counts = []
    for size in (2, 40):
        with django_assert_max_num_queries(4) as captured:
            response = client.get(f"/api/v1/{path}/?page_size={size}")
        assert response.status_code == 200
        assert len(response.json()["results"]) >= min(size, 2)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], path


@pytest.mark.django_db
@pytest.mark.parametrize("path", LIST_PATHS)
def test_customer_lists_run_constant_queries_whatever_the_page_size(path, django_assert_max_num_queries):
    caller = api_customer()
    _populate([caller.customer], per_customer=30)
    caller.client.get("/api/v1/plans/")  # caches the caller's plan limits, as in steady use
    counts = []
    for size in (2, 30):
        with django_assert_max_num_queries(4) as captured:
            response = caller.client.get(f"/api/v1/{path}/?page_size={size}")
        assert response.status_code == 200, response.content
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], path
