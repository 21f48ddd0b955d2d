"""Cards and Checkout through the API: SetupIntents against localstripe, Checkout Sessions against the
RecordingStripe loopback peer (localstripe has none), and the 503 when Stripe is not configured."""

import pytest

from billing_project.tests.api_support import api_customer, staff_client
from credits.models import CreditLedgerEntry
from payments.models import BillingReason, Invoice, InvoiceStatus
from payments.tests.stripe_support import new_id, stripe_account_id, stripe_account_set
from subscriptions.models import ApiIdempotencyKey, Customer, Subscription, SubscriptionStatus
from subscriptions.tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

URLS = {"success_url": "https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example.com/billing"}


@pytest.fixture
def redirects(settings):
    settings.CHECKOUT_REDIRECT_HOSTS = ["app.example.com"]
    settings.CHECKOUT_SUCCESS_URL = "https://billing.example.com/checkout/done"
    settings.CHECKOUT_CANCEL_URL = "https://billing.example.com/checkout/cancel"
    settings.CREDIT_PACKS = {
        "small": {"credits": 100, "prices": {"USD": 500}},
        "big": {"credits": 1000, "prices": {"USD": 4000, "EUR": 3800}},
    }


def _stripe_customer(caller):
    """Checkout's peer only speaks Checkout: give the customer its Stripe id beforehand."""
    stripe_account_set(caller.customer, customer_id=new_id("cus"))


# ----------------------------------------------------------------------------- SetupIntent


@pytest.mark.slow
def test_setup_intent_creates_the_stripe_customer_once_and_returns_a_client_secret(stripe_api, settings):
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_abc"
    caller = api_customer()

    first = caller.client.post("/api/v1/payment-methods/setup-intent/", {}, format="json")
    second = caller.client.post("/api/v1/payment-methods/setup-intent/", {}, format="json")

    assert first.status_code == 201, first.content
    body = first.json()
    caller.customer.refresh_from_db()
    assert body["id"].startswith("seti_") and body["client_secret"].startswith(body["id"])
    assert body["provider"] == "stripe" and body["provider_customer_id"] == stripe_account_id(caller.customer)
    assert body["publishable_key"] == "pk_test_abc"
    # The Stripe customer is reused; each call is a fresh SetupIntent.
    assert second.json()["provider_customer_id"] == body["provider_customer_id"]
    assert second.json()["id"] != body["id"]


@pytest.mark.slow
def test_staff_start_a_setup_intent_for_the_customer_they_name(stripe_api):
    caller = api_customer()
    response = staff_client().post("/api/v1/payment-methods/setup-intent/", {"customer": caller.customer.pk},
                                   format="json")
    assert response.status_code == 201, response.content
    caller.customer.refresh_from_db()
    assert response.json()["provider_customer_id"] == stripe_account_id(caller.customer)


def test_setup_intent_without_stripe_answers_503_and_writes_nothing(settings):
    settings.STRIPE_SECRET_KEY = ""
    caller = api_customer()

    response = caller.client.post("/api/v1/payment-methods/setup-intent/", {}, format="json",
                                  HTTP_IDEMPOTENCY_KEY="k-503")

    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("billing_error", "payment_provider_unavailable")
    assert "STRIPE_SECRET_KEY" in error["message"]
    caller.customer.refresh_from_db()
    assert not stripe_account_id(caller.customer)
    # A 5xx is not an answer to keep: the key is free for the retry once Stripe is configured.
    assert not ApiIdempotencyKey.objects.exists()


# ----------------------------------------------------------------------------- Checkout: subscription


def test_checkout_subscription_opens_a_session_for_the_first_invoice(recording_stripe, redirects):
    caller = api_customer(subscribed=False)
    _stripe_customer(caller)
    plan = PlanFactory(amount=1900, trial_days=14)

    response = caller.client.post("/api/v1/checkout/subscription/", {"plan": plan.pk, **URLS}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    fields = recording_stripe.requests[-1]["fields"]
    assert body["url"].startswith("https://checkout.stripe.com/") and body["id"].startswith("cs_test")
    assert fields["success_url"] == URLS["success_url"] and fields["cancel_url"] == URLS["cancel_url"]
    assert fields["line_items[0][price_data][unit_amount]"] == "1900"
    assert body["subscription"]["status"] == "incomplete" and body["subscription"]["plan"]["id"] == plan.pk
    assert body["invoice"]["status"] == "open" and body["invoice"]["amount_due"] == 1900
    assert body["credit_pack"] is None
    invoice = Invoice.objects.get(pk=body["invoice"]["id"])
    assert invoice.metadata["checkout_session_id"] == body["id"] and invoice.next_attempt_at is None


def test_checkout_uses_the_configured_redirects_when_the_body_names_none(recording_stripe, redirects):
    caller = api_customer(subscribed=False)
    _stripe_customer(caller)

    response = caller.client.post("/api/v1/checkout/subscription/", {"plan": PlanFactory(trial_days=0).pk},
                                  format="json")

    assert response.status_code == 201, response.content
    fields = recording_stripe.requests[-1]["fields"]
    assert fields["success_url"] == "https://billing.example.com/checkout/done"
    assert fields["cancel_url"] == "https://billing.example.com/checkout/cancel"


@pytest.mark.parametrize("url", ["https://evil.example.net/phish", "javascript://app.example.com/x",
                                 "https://app.example.com.evil.net/"])
def test_checkout_refuses_redirects_to_hosts_not_allowed_and_starts_nothing(recording_stripe, redirects, url):
    caller = api_customer(subscribed=False)
    _stripe_customer(caller)

    response = caller.client.post("/api/v1/checkout/subscription/",
                                  {"plan": PlanFactory().pk, "success_url": url}, format="json")

    assert response.status_code == 400, response.content
    assert "success_url" in response.json()["error"]["fields"]
    assert recording_stripe.requests == []
    assert not Subscription.objects.filter(customer=caller.customer).exists()


def test_checkout_without_a_default_or_given_url_is_a_400(recording_stripe, settings):
    settings.CHECKOUT_SUCCESS_URL = ""
    caller = api_customer(subscribed=False)
    _stripe_customer(caller)
    response = caller.client.post("/api/v1/checkout/subscription/", {"plan": PlanFactory().pk}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"success_url": ["This field is required."]}


def test_checkout_subscription_is_refused_when_the_customer_already_has_one(recording_stripe, redirects):
    caller = api_customer()
    _stripe_customer(caller)

    response = caller.client.post("/api/v1/checkout/subscription/", {"plan": PlanFactory().pk}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "subscription_exists"
    assert recording_stripe.requests == []
    assert Subscription.objects.filter(customer=caller.customer).count() == 1


def test_checkout_of_a_free_plan_says_to_subscribe_directly(recording_stripe, redirects):
    caller = api_customer(subscribed=False)
    response = caller.client.post("/api/v1/checkout/subscription/", {"plan": PlanFactory(amount=0).pk},
                                  format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_to_pay"


def test_a_repeated_checkout_with_one_idempotency_key_opens_one_session(recording_stripe, redirects):
    caller = api_customer(subscribed=False)
    _stripe_customer(caller)
    body = {"plan": PlanFactory(trial_days=0).pk, **URLS}

    first = caller.client.post("/api/v1/checkout/subscription/", body, format="json", HTTP_IDEMPOTENCY_KEY="co-1")
    again = caller.client.post("/api/v1/checkout/subscription/", body, format="json", HTTP_IDEMPOTENCY_KEY="co-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert len(recording_stripe.requests) == 1


# ----------------------------------------------------------------------------- Checkout: credit pack


def test_checkout_credit_pack_sells_the_pack_at_its_price_in_the_customers_currency(recording_stripe, redirects):
    caller = api_customer()
    _stripe_customer(caller)

    response = caller.client.post("/api/v1/checkout/credit-pack/", {"pack": "big", **URLS}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["credit_pack"] == {"code": "big", "credits": 1000, "amount": 4000, "currency": "USD"}
    assert body["subscription"] is None
    invoice = Invoice.objects.get(pk=body["invoice"]["id"])
    assert invoice.billing_reason == BillingReason.CREDIT_PACK and invoice.status == InvoiceStatus.OPEN
    assert (invoice.amount_due, invoice.lines.get().credits) == (4000, 1000)
    assert recording_stripe.requests[-1]["fields"]["metadata[kind]"] == "credit_pack"
    # Credits come when the invoice is paid, not before.
    assert not CreditLedgerEntry.objects.filter(customer=caller.customer).exists()


def test_a_pack_not_sold_in_the_customers_currency_is_a_400_listing_the_choices(recording_stripe, redirects):
    caller = api_customer()
    _stripe_customer(caller)
    Customer.objects.filter(pk=caller.customer.pk).update(currency="EUR")

    response = caller.client.post("/api/v1/checkout/credit-pack/", {"pack": "small"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_credit_pack" and error["fields"] == {"pack": ["Choose one of: big."]}
    assert recording_stripe.requests == [] and not Invoice.objects.exists()


def test_credit_pack_checkout_without_stripe_answers_503_and_writes_nothing(settings, redirects):
    settings.STRIPE_SECRET_KEY = ""
    caller = api_customer()
    response = caller.client.post("/api/v1/checkout/credit-pack/", {"pack": "small"}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "payment_provider_unavailable"
    assert not Invoice.objects.exists()


def test_subscription_checkout_without_stripe_answers_503_and_writes_nothing(settings, redirects):
    settings.STRIPE_SECRET_KEY = ""
    caller = api_customer(subscribed=False)
    response = caller.client.post("/api/v1/checkout/subscription/", {"plan": PlanFactory().pk}, format="json")
    assert response.status_code == 503
    assert not Subscription.objects.exists() and not Invoice.objects.exists()


def test_credit_packs_are_listed_in_the_customers_currency(redirects, django_assert_max_num_queries):
    caller = api_customer()
    caller.client.get("/api/v1/plans/")  # caches the caller's plan limits, as in steady use
    with django_assert_max_num_queries(2):
        response = caller.client.get("/api/v1/checkout/credit-packs/")
    assert response.status_code == 200
    assert [p["code"] for p in response.json()] == ["small", "big"]
    staff = staff_client()
    assert [p["code"] for p in staff.get("/api/v1/checkout/credit-packs/?currency=eur").json()] == ["big"]
    assert staff.get("/api/v1/checkout/credit-packs/").status_code == 400


def test_a_customer_without_api_access_can_still_pay_by_card(recording_stripe, redirects):
    caller = api_customer(subscribed=False, features=[])
    _stripe_customer(caller)
    plan = PlanFactory(features=[], trial_days=0)
    response = caller.client.post("/api/v1/checkout/subscription/", {"plan": plan.pk}, format="json")
    assert response.status_code == 201, response.content
    assert Subscription.objects.get(customer=caller.customer).status == SubscriptionStatus.INCOMPLETE
