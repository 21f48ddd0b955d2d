"""`manage.py seed --demo` builds customers paying with a PayPal wallet, through the PayPal rail's sync,
without calling PayPal (no keys are set: any call would answer 503)."""

from io import StringIO

import pytest
from django.core.management import call_command

from payments.models import Payment, PaymentStatus
from payments.providers.paypal.models import PayPalAccount
from payments.selectors import invoice_total_mismatches

pytestmark = pytest.mark.django_db


def test_demo_customers_pay_with_paypal_wallets_without_calling_paypal(settings):
    settings.PAYPAL_CLIENT_ID = settings.PAYPAL_CLIENT_SECRET = ""
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True  # the README's run is a DEBUG run: the seed's default staff password applies
    call_command("seed", demo="12", as_of="2026-06-01", stdout=StringIO())
    collected = [PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED]
    paid = Payment.objects.filter(method="paypal", status__in=collected)
    assert PayPalAccount.objects.exclude(vault_id="").exists()
    assert paid.exists() and all(p.paypal_order_id.startswith("ORD") for p in paid)
    assert invoice_total_mismatches() == []
