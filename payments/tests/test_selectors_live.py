"""The reads behind the payments WebSocket: who may see what, and the snapshot."""

import pytest
from django.contrib.auth.models import AnonymousUser, Permission

from payments.models import PaymentMethod, PaymentStatus
from payments.selectors import LiveAudience, PaymentLiveFilters, payment_live_audience, payment_live_snapshot
from payments.tests.factories import InvoiceFactory, PaymentFactory
from subscriptions.tests.factories import CustomerFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_staff_allowed_to_view_payments_see_everyone():
    assert payment_live_audience(user=StaffUserFactory()) == LiveAudience(is_staff=True)
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_payment"))
    assert payment_live_audience(user=clerk) == LiveAudience(is_staff=True)


def test_a_customers_user_sees_only_that_customer():
    customer = CustomerFactory()
    assert payment_live_audience(user=customer.user) == LiveAudience(is_staff=False, customer_id=customer.pk)


def test_staff_without_view_permission_fall_back_to_their_customer():
    customer = CustomerFactory(user=UserFactory(is_staff=True))
    assert payment_live_audience(user=customer.user) == LiveAudience(is_staff=False, customer_id=customer.pk)


def test_anonymous_inactive_and_customerless_users_see_nothing():
    assert payment_live_audience(user=AnonymousUser()) is None
    assert payment_live_audience(user=UserFactory()) is None
    assert payment_live_audience(user=CustomerFactory(user=UserFactory(is_active=False)).user) is None


def test_customer_snapshot_is_scoped_even_when_filters_name_another_customer(django_assert_num_queries):
    mine, theirs = CustomerFactory(), CustomerFactory()
    PaymentFactory(customer=mine)
    PaymentFactory(customer=theirs)
    audience = LiveAudience(is_staff=False, customer_id=mine.pk)
    with django_assert_num_queries(2):
        items, total = payment_live_snapshot(audience=audience, filters=PaymentLiveFilters(customer_id=theirs.pk),
                                             limit=10)
    assert (items, total) == ([], 0)


def test_snapshot_costs_two_queries_whatever_the_page_size(django_assert_num_queries):
    invoice = InvoiceFactory()
    for _ in range(30):
        PaymentFactory(customer=invoice.customer, invoice=invoice)
    with django_assert_num_queries(2):
        items, total = payment_live_snapshot(audience=LiveAudience(is_staff=True), filters=PaymentLiveFilters(),
                                             limit=25)
        # The payload reads the invoice number: it comes with the page, not one query per item.
        numbers = [payment.invoice.number for payment in items]
    assert (len(items), total, len(numbers)) == (25, 30, 25)


def test_filters_match_broadcast_fields_like_the_snapshot_query():
    payments = [
        PaymentFactory(status=PaymentStatus.FAILED),
        PaymentFactory(status=PaymentStatus.SUCCEEDED, method=PaymentMethod.CASH),
        PaymentFactory(invoice=InvoiceFactory()),
    ]
    filter_sets = [
        PaymentLiveFilters(),
        PaymentLiveFilters(statuses=frozenset({"failed", "succeeded"})),
        PaymentLiveFilters(methods=frozenset({"cash"})),
        PaymentLiveFilters(invoice_id=payments[2].invoice_id),
        PaymentLiveFilters(customer_id=payments[0].customer_id, statuses=frozenset({"failed"})),
        PaymentLiveFilters(customer_id=payments[1].customer_id, methods=frozenset({"stripe"})),
    ]
    for filters in filter_sets:
        items, total = payment_live_snapshot(audience=LiveAudience(is_staff=True), filters=filters, limit=10)
        in_memory = {p.pk for p in payments if filters.matches({"customer": p.customer_id, "invoice": p.invoice_id,
                                                                "status": p.status, "method": p.method})}
        assert {p.pk for p in items} == in_memory, filters
        assert total == len(in_memory)
