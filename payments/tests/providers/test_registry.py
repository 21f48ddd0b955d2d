import pytest

from core.exceptions import PaymentProviderUnavailable
from payments.providers import Capability, PaymentProvider, provider_for, provider_with, providers_with
from payments.providers.manual import ManualProvider

ONLY_MANUAL = ["payments.providers.manual.ManualProvider"]


@pytest.mark.parametrize("code", ["manual", "cash", "check", "bank_transfer"])
def test_manual_methods_are_answered_by_the_manual_rail(settings, code):
    settings.PAYMENT_PROVIDERS = ONLY_MANUAL
    provider = provider_for(code)
    assert isinstance(provider, ManualProvider) and isinstance(provider, PaymentProvider)
    assert provider.capabilities == frozenset()


def test_a_code_no_installed_rail_answers_for_is_503_not_a_crash(settings):
    settings.PAYMENT_PROVIDERS = ONLY_MANUAL
    with pytest.raises(PaymentProviderUnavailable) as raised:
        provider_for("paypal")
    assert raised.value.http_status == 503 and raised.value.code == "payment_provider_unknown"


def test_a_capability_no_installed_rail_offers_is_503(settings):
    settings.PAYMENT_PROVIDERS = ONLY_MANUAL
    assert providers_with(Capability.HOSTED_CHECKOUT) == []
    with pytest.raises(PaymentProviderUnavailable) as raised:
        provider_with(Capability.HOSTED_CHECKOUT)
    assert raised.value.code == "capability_unavailable"


@pytest.mark.parametrize("call", ["charge_off_session", "refund_create", "checkout_session_create",
                                  "setup_session_create"])
def test_the_manual_rail_refuses_every_provider_call_with_503(call):
    with pytest.raises(PaymentProviderUnavailable) as raised:
        getattr(ManualProvider(), call)(None)
    assert raised.value.code == "capability_unavailable" and raised.value.extra["provider"] == "manual"
