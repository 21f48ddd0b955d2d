"""Where webhooks may go: every non-public address is refused unless the setting allows it; URLs that are
not http(s) with a host are refused before any DNS."""

import ipaddress

import pytest

from outbound_webhooks.network import (
    UnsafeWebhookUrl,
    address_allowed,
    webhook_signature,
    webhook_url_check_syntax,
    webhook_url_resolve,
)


@pytest.fixture
def public_only(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "::ffff:10.0.0.1"])
def test_non_public_addresses_are_refused(public_only, address):
    assert not address_allowed(address=ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(public_only, address):
    assert address_allowed(address=ipaddress.ip_address(address))


def test_the_setting_allows_private_addresses(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    assert address_allowed(address=ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize("url", ["ftp://example.com/", "https://", "https://user:pw@example.com/",
                                 "http://[::1/", "http://example.com:99999/", "http://10.0.0.1/"])
def test_urls_that_are_not_allowed_are_refused_without_resolving(public_only, url):
    with pytest.raises(UnsafeWebhookUrl):
        webhook_url_check_syntax(url=url)


def test_a_name_resolving_to_loopback_is_refused(public_only):
    with pytest.raises(UnsafeWebhookUrl, match="not public: 127.0.0.1"):
        webhook_url_resolve(url="http://localhost:8000/hooks")


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    assert webhook_signature(secret="whsec_x", timestamp=1, body=b"{}") == (
        "36ee2f7498f0c1777d1312b2a7361947fe5ad31223be30d0c62421f4ca753401")  # HMAC-SHA256("whsec_x", "1.{}")
