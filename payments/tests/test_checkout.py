import pytest

from core.exceptions import InvalidOperation
from payments.checkout import checkout_redirect_urls, credit_pack_get, credit_pack_list


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
