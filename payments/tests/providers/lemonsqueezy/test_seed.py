"""`manage.py seed --demo` builds customers on Lemon Squeezy through the rail's own mirror, without calling it."""

from io import StringIO

import pytest
from django.core.management import call_command

from credits.models import CreditLedgerEntry
from payments.models import Invoice, InvoiceStatus, Payment, ProviderSubscription
from subscriptions.models import Subscription, SubscriptionStatus

pytestmark = pytest.mark.django_db


def test_demo_builds_mirrored_lemon_squeezy_customers_with_paid_periods_and_credits(settings):
    settings.LEMONSQUEEZY_API_KEY = settings.LEMONSQUEEZY_STORE_ID = ""
    settings.LEMONSQUEEZY_API_BASE = "http://127.0.0.1:9/v1"  # nothing answers: a call would fail the seed
    settings.DEBUG = True
    call_command("seed", demo="16", as_of="2026-06-01", stdout=StringIO())
    mirrored = Subscription.objects.filter(billed_by="lemonsqueezy")
    assert mirrored.count() == 2 and set(mirrored.values_list("status", flat=True)) == {SubscriptionStatus.ACTIVE}
    assert ProviderSubscription.objects.filter(provider="lemonsqueezy").count() == 2
    for subscription in mirrored:
        invoices = Invoice.objects.filter(subscription=subscription)
        assert invoices.count() >= 2 and set(invoices.values_list("status", flat=True)) == {InvoiceStatus.PAID}
        assert Payment.objects.filter(invoice__subscription=subscription, method="lemonsqueezy").count() \
            == invoices.count()
        grants = CreditLedgerEntry.objects.filter(customer=subscription.customer, kind="grant").count()
        assert grants == (invoices.count() if subscription.plan.credits_per_period else 0)
    call_command("seed", demo="16", as_of="2026-06-01", stdout=StringIO())
    assert Subscription.objects.filter(billed_by="lemonsqueezy").count() == 2
