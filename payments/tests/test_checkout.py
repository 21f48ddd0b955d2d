from datetime import timedelta

import pytest

from core.exceptions import InvalidOperation, PaymentProviderError
from payments.checkout import INVOICE_CHECKOUT_HOLD, checkout_redirect_urls, credit_pack_get, credit_pack_list
from payments.tests.providers.paypal.support import one_off_invoice


@pytest.fixture
def catalog(settings):
    settings.CREDIT_PACKS = {
        "big": {"credits": 1000, "prices": {"USD": 4000, "JPY": 6000}},
        "small": {"credits": 100, "prices": {"USD": 500}},
    }
    settings.CHECKOUT_REDIRECT_HOSTS = ["app.example.com", "localhost"]
    settings.CHECKOUT_SUCCESS_URL = "https://billing.example.com/done"
    settings.CHECKOUT_CANCEL_URL = "https://billing.example.com/cancel"


def test_packs_are_priced_in_the_asked_currency_smallest_first(catalog):
    assert [(p.code, p.amount) for p in credit_pack_list(currency="USD")] == [("small", 500), ("big", 4000)]
    assert [(p.code, p.amount) for p in credit_pack_list(currency="JPY")] == [("big", 6000)]
    assert credit_pack_get(code="big", currency="JPY").credits == 1000


def test_a_pack_not_sold_in_a_currency_is_refused_with_the_choices(catalog):
    with pytest.raises(InvalidOperation) as refused:
        credit_pack_get(code="small", currency="JPY")
    assert refused.value.code == "unknown_credit_pack"
    assert refused.value.extra["fields"] == {"pack": ["Choose one of: big."]}


def test_redirects_on_allowed_hosts_are_kept_whatever_the_case_or_port(catalog):
    urls = checkout_redirect_urls(success_url="https://APP.example.com:8443/ok?s={CHECKOUT_SESSION_ID}",
                                  cancel_url="http://localhost:3000/back")
    assert urls == ("https://APP.example.com:8443/ok?s={CHECKOUT_SESSION_ID}", "http://localhost:3000/back")


def test_missing_redirects_fall_back_to_the_configured_defaults(catalog):
    assert checkout_redirect_urls(success_url=None, cancel_url="") == (
        "https://billing.example.com/done", "https://billing.example.com/cancel")


@pytest.mark.parametrize("url", ["https://example.com/", "ftp://app.example.com/", "https://user@evil.net/",
                                 "//app.example.com/x", "https://app.example.com@evil.net/"])
def test_redirects_elsewhere_are_refused(catalog, url):
    with pytest.raises(InvalidOperation) as refused:
        checkout_redirect_urls(success_url=url, cancel_url=None)
    assert refused.value.code == "redirect_not_allowed" and "success_url" in refused.value.extra["fields"]


@pytest.mark.django_db
def test_a_request_may_name_the_rail_and_an_unknown_or_unfit_one_is_a_400_naming_the_field(paypal_api):
    from payments.checkout import checkout_rail
    from payments.providers import Capability

    assert checkout_rail(provider="paypal", capability=Capability.HOSTED_CHECKOUT).code == "paypal"
    for provider in ("nope", "cash", "manual"):
        with pytest.raises(InvalidOperation) as refused:
            checkout_rail(provider=provider, capability=Capability.HOSTED_CHECKOUT)
        assert refused.value.extra["fields"]["provider"] == ["Choose one of: paypal, stripe."]


@pytest.mark.django_db
def test_an_open_invoice_is_paid_on_the_rails_checkout_page_held_off_collection_meanwhile(paypal_api, actor):
    from payments.checkout import checkout_invoice_start

    invoice = one_off_invoice(actor)
    due = invoice.next_attempt_at
    start = checkout_invoice_start(invoice=invoice, actor=actor, success_url="https://shop.test/ok",
                                   cancel_url="https://shop.test/no", provider="paypal")
    sent = paypal_api.requests[-1]["body"]["purchase_units"][0]
    assert start.session.url.startswith("https://www.sandbox.paypal.com/checkoutnow")
    assert sent["custom_id"] == f"invoice-{invoice.pk}" and sent["amount"]["value"] == "120.00"
    # Held off collection while the customer pays (an abandoned page gives it back after the hold).
    assert start.invoice.next_attempt_at >= due + INVOICE_CHECKOUT_HOLD - timedelta(minutes=1)
    assert start.invoice.metadata["checkout_session_id"] == start.session.reference


@pytest.mark.django_db
def test_when_the_rail_fails_the_invoice_goes_back_to_collection(paypal_api, actor):
    from payments.checkout import checkout_invoice_start
    from payments.models import Invoice

    invoice = one_off_invoice(actor)
    due = invoice.next_attempt_at
    paypal_api.fail_next("server_error")
    with pytest.raises(PaymentProviderError):
        checkout_invoice_start(invoice=invoice, actor=actor, success_url="https://shop.test/ok",
                               cancel_url="https://shop.test/no", provider="paypal")
    invoice = Invoice.objects.get(pk=invoice.pk)
    assert invoice.next_attempt_at == due and "checkout_session_id" not in invoice.metadata


@pytest.mark.django_db
def test_a_paid_invoice_has_nothing_to_pay(paypal_api, actor):
    from payments.checkout import checkout_invoice_start

    invoice = one_off_invoice(actor, amount=0)
    with pytest.raises(InvalidOperation) as refused:
        checkout_invoice_start(invoice=invoice, actor=actor, success_url="https://shop.test/ok",
                               cancel_url="https://shop.test/no", provider="paypal")
    assert refused.value.code == "nothing_to_pay" and paypal_api.requests == []
