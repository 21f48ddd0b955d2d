"""PayPal in the back office and the billing run: the webhook inbox with its reprocess action, refunds from
the admin, saving a wallet through the API, and renewals and dunning charging the vaulted wallet."""

import pytest
from django.utils import timezone

from billing_project.tests.admin_helpers import messages_of, post_action
from billing_project.tests.api_support import api_customer
from payments.collection import invoice_collect
from payments.models import Payment, PaymentStatus, ProviderEventStatus
from payments.providers.paypal.models import PayPalEvent
from payments.providers.paypal.services import customer_paypal_ensure
from payments.selectors.provider_accounts import provider_account_get
from payments.services import provider_account_default_payment_method_set
from payments.tests.providers.paypal.support import charged_payment, one_off_invoice
from subscriptions.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
P = PaymentStatus


def vaulted_customer(peer, customer, actor) -> str:
    """The customer's wallet saved at the peer under our id for them, and made their default."""
    account = customer_paypal_ensure(customer=customer)
    setup = peer.setup_token_create({"customer": {"id": account.provider_customer_id}})[1]
    peer.approve_setup_token(setup["id"])
    token = peer.payment_token_create({"payment_source": {"token": {"id": setup["id"]}}})[1]
    provider_account_default_payment_method_set(customer=customer, provider="paypal", payment_method_id=token["id"],
                                                observed_at=timezone.now(), actor=actor)
    return token["id"]


def test_collection_charges_the_vaulted_wallet_off_session_and_pays_the_invoice(paypal_api, actor, settings):
    settings.STRIPE_SECRET_KEY = ""
    invoice = one_off_invoice(actor, amount=4200)
    vaulted_customer(paypal_api, invoice.customer, actor)
    result = invoice_collect(invoice=invoice, actor=actor, now=timezone.now())
    invoice.refresh_from_db()
    payment = result.payment
    assert (result.outcome, invoice.status) == ("succeeded", "paid")
    assert (payment.provider, payment.status) == ("paypal", P.SUCCEEDED)
    assert paypal_api.captures[payment.provider_charge_id]["amount"]["value"] == "42.00"
    sent = paypal_api.requests[-1]
    assert sent["request_id"] == f"invoice-{invoice.pk}-attempt-1"
    assert sent["body"]["payment_source"]["paypal"]["vault_id"]


def test_a_declined_wallet_is_a_failed_attempt_for_dunning(paypal_api, actor, settings):
    settings.STRIPE_SECRET_KEY = ""
    invoice = one_off_invoice(actor, amount=4200)
    vaulted_customer(paypal_api, invoice.customer, actor)
    paypal_api.fail_next("decline")
    result = invoice_collect(invoice=invoice, actor=actor, now=timezone.now())
    assert result.outcome == "failed" and result.payment.status == P.FAILED


def test_a_customer_saves_a_wallet_by_approval_and_confirms_it(paypal_api, settings):
    settings.CHECKOUT_REDIRECT_HOSTS = ["app.example.com"]
    settings.CHECKOUT_SUCCESS_URL = "https://app.example.com/saved"
    settings.CHECKOUT_CANCEL_URL = "https://app.example.com/billing"
    caller = api_customer()
    started = caller.client.post("/api/v1/payment-methods/approval/", {"provider": "paypal"}, format="json").json()
    paypal_api.approve_setup_token(started["id"])
    confirmed = caller.client.post("/api/v1/payment-methods/approval/confirm/",
                                   {"provider": "paypal", "setup_token": started["id"]}, format="json")
    account = provider_account_get(customer=caller.customer, provider="paypal")
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["default_payment_method"] == account.default_payment_method_id != ""
    other = api_customer()
    stolen = other.client.post("/api/v1/payment-methods/approval/confirm/",
                               {"provider": "paypal", "setup_token": started["id"]}, format="json")
    assert stolen.status_code == 400 and stolen.json()["error"]["code"] == "setup_token_mismatch"


def test_staff_refund_a_paypal_payment_from_the_admin(admin_client, paypal_api, actor):
    payment = charged_payment(paypal_api, actor, amount=3000)
    response = post_action(admin_client, Payment, "refund", [payment], apply=True, amount="10.00", reason="goodwill",
                           token="7f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c21")
    payment.refresh_from_db()
    assert messages_of(response) == ["Refunded 1 payment(s)."]
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 1000)
    assert paypal_api.requests[-1]["path"].endswith("/refund")


def test_the_paypal_inbox_is_in_the_admin_with_a_reprocess_action(client, paypal_api, actor):
    payment = charged_payment(paypal_api, actor)
    capture = paypal_api.captures[payment.provider_charge_id]
    event = PayPalEvent.objects.create(event_id="WH-ADMIN", type="PAYMENT.CAPTURE.COMPLETED",
                                       payload=paypal_api.webhook("PAYMENT.CAPTURE.COMPLETED", capture,
                                                                  event_id="WH-ADMIN"),
                                       status=ProviderEventStatus.FAILED, attempts=1, error="earlier failure")
    client.force_login(StaffUserFactory())
    assert client.get("/admin/payments_paypal/paypalevent/").status_code == 200
    response = client.post("/admin/payments_paypal/paypalevent/", {"action": "reprocess",
                                                                   "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert response.status_code == 302 and event.attempts == 2
    assert event.status in (ProviderEventStatus.PROCESSED, ProviderEventStatus.IGNORED)


def test_the_billing_run_renews_and_charges_the_vaulted_wallet(paypal_api, actor, settings):
    from payments.billing.run import billing_run
    from payments.models import Invoice
    from payments.tests.conftest import make_due_subscription

    settings.STRIPE_SECRET_KEY = ""
    subscription = make_due_subscription()
    vaulted_customer(paypal_api, subscription.customer, actor)
    billing_run(as_of=subscription.current_period_end)
    invoice = Invoice.objects.get(subscription=subscription, billing_reason="subscription_cycle")
    payment = invoice.payments.get()
    assert invoice.status == "paid" and (payment.provider, payment.status) == ("paypal", P.SUCCEEDED)
    assert paypal_api.requests[-1]["request_id"] == f"invoice-{invoice.pk}-attempt-1"


def test_a_paypal_only_customers_trial_converts_on_the_neutral_account_and_is_charged(paypal_api, actor, settings):
    from datetime import timedelta

    from payments.billing.run import billing_run
    from payments.models import Invoice
    from payments.providers.models import ProviderAccount
    from payments.tests.conftest import T0, make_due_subscription
    from subscriptions.models import SubscriptionStatus
    from subscriptions.tests.factories import PlanFactory

    # A payment method is required to convert: only the customer's PayPal provider account can give one.
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = True
    settings.STRIPE_SECRET_KEY = ""
    trial_end = T0 + timedelta(days=14)
    subscription = make_due_subscription(plan=PlanFactory(amount=1500, trial_days=14), anchor=trial_end,
                                         status=SubscriptionStatus.TRIALING, trial_start=T0, trial_end=trial_end)
    subscription.current_period_start, subscription.current_period_end = T0, trial_end
    subscription.save()
    vaulted_customer(paypal_api, subscription.customer, actor)
    assert set(ProviderAccount.objects.filter(customer=subscription.customer).values_list("provider", flat=True)) \
        == {"paypal"}

    summary = billing_run(as_of=trial_end)

    subscription.refresh_from_db()
    invoice = Invoice.objects.get(subscription=subscription)
    payment = invoice.payments.get()
    assert summary.counts["trials_converted"] == 1 and subscription.status == SubscriptionStatus.ACTIVE
    assert invoice.status == "paid" and (payment.provider, payment.status) == ("paypal", P.SUCCEEDED)
    assert payment.provider_payment_id and payment.provider_charge_id in paypal_api.captures
