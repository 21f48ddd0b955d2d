"""payments/api/provider_views.py: saving a payment method by approval (PayPal's approve link) and
paying any open invoice on a rail's checkout page, against the loopback PayPal."""

import pytest

from billing_project.tests.api_support import api_customer, staff_client
from payments.tests.providers.paypal.support import one_off_invoice

pytestmark = pytest.mark.django_db

URLS = {"success_url": "https://app.example.com/paid", "cancel_url": "https://app.example.com/billing"}


@pytest.fixture
def redirects(settings):
    settings.CHECKOUT_REDIRECT_HOSTS = ["app.example.com"]
    settings.CHECKOUT_SUCCESS_URL = "https://billing.example.com/done"
    settings.CHECKOUT_CANCEL_URL = "https://billing.example.com/cancel"


def test_a_customer_gets_paypals_approve_link_to_save_a_wallet(paypal_api, redirects):
    caller = api_customer()
    response = caller.client.post("/api/v1/payment-methods/approval/", {"provider": "paypal", **URLS}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["provider"] == "paypal"
    assert response.json()["url"].startswith("https://www.sandbox.paypal.com/agreements/approve")
    sent = paypal_api.requests[-1]["body"]["payment_source"]["paypal"]["experience_context"]
    assert sent["return_url"] == URLS["success_url"]


@pytest.mark.parametrize(("body", "field"), [({"provider": "nope"}, "provider"), ({"provider": "cash"}, "provider"),
                                             ({"provider": "paypal", "success_url": "https://evil.example/x"},
                                              "success_url")])
def test_bad_input_is_a_400_naming_the_field(paypal_api, redirects, body, field):
    caller = api_customer()
    response = caller.client.post("/api/v1/payment-methods/approval/", body, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_without_paypal_keys_the_approval_answers_503_with_a_clear_message(redirects, settings):
    settings.PAYPAL_CLIENT_ID = ""
    response = api_customer().client.post("/api/v1/payment-methods/approval/", {"provider": "paypal"}, format="json")
    assert response.status_code == 503 and "PAYPAL_CLIENT_ID" in response.json()["error"]["message"]


def test_a_customer_pays_its_one_off_invoice_through_a_paypal_order(paypal_api, redirects, actor):
    caller = api_customer()
    invoice = one_off_invoice(actor, amount=9900, customer=caller.customer)
    response = caller.client.post("/api/v1/checkout/invoice/", {"invoice": invoice.pk, "provider": "paypal", **URLS},
                                  format="json")
    body = response.json()
    assert response.status_code == 201, body
    assert body["url"].startswith("https://www.sandbox.paypal.com/checkoutnow") and body["invoice"]["id"] == invoice.pk
    assert paypal_api.requests[-1]["body"]["purchase_units"][0]["amount"]["value"] == "99.00"


def test_another_customers_invoice_is_refused_like_a_missing_one(paypal_api, redirects, actor):
    invoice = one_off_invoice(actor)
    response = api_customer().client.post("/api/v1/checkout/invoice/", {"invoice": invoice.pk, "provider": "paypal"},
                                          format="json")
    missing = api_customer().client.post("/api/v1/checkout/invoice/", {"invoice": 10**9, "provider": "paypal"},
                                         format="json")
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() and paypal_api.requests == []


def test_staff_open_a_checkout_for_any_customers_invoice(paypal_api, redirects, actor):
    invoice = one_off_invoice(actor)
    response = staff_client().post("/api/v1/checkout/invoice/", {"invoice": invoice.pk, "provider": "paypal"},
                                   format="json")
    assert response.status_code == 201, response.json()


def test_a_credit_pack_is_bought_through_a_paypal_order_when_asked(paypal_api, redirects, settings):
    settings.CREDIT_PACKS = {"small": {"credits": 100, "prices": {"USD": 500}}}
    caller = api_customer()
    response = caller.client.post("/api/v1/checkout/credit-pack/", {"pack": "small", "provider": "paypal", **URLS},
                                  format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["url"].startswith("https://www.sandbox.paypal.com/checkoutnow")
    assert paypal_api.requests[-1]["body"]["purchase_units"][0]["amount"]["value"] == "5.00"
