"""`manage.py seed --demo` builds customers paying with a PayPal wallet, through the PayPal rail's applies,
without calling PayPal (no keys are set: any call would answer 503)."""

from io import StringIO

import pytest
from django.core.management import call_command

from payments.models import Payment, PaymentStatus, ProviderAccount

pytestmark = pytest.mark.django_db


def test_demo_customers_pay_with_paypal_wallets_without_calling_paypal(settings):
    settings.PAYPAL_CLIENT_ID = settings.PAYPAL_CLIENT_SECRET = ""
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True  # the README's run is a DEBUG run: the seed's default staff password applies
    call_command("seed", demo="12", as_of="2026-06-01", stdout=StringIO())
    wallets = ProviderAccount.objects.filter(provider="paypal").exclude(default_payment_method_id="")
    paid = Payment.objects.filter(provider="paypal", status__in=[PaymentStatus.SUCCEEDED,
                                                                  PaymentStatus.PARTIALLY_REFUNDED,
                                                                  PaymentStatus.REFUNDED])
    assert wallets.count() >= 1
    assert paid.exists() and all(p.provider_payment_id and p.provider_charge_id for p in paid)
    assert set(paid.values_list("customer__provider_accounts__provider", flat=True)) >= {"paypal"}
