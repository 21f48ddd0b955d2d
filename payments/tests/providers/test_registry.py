import pytest

from core.audit import Actor
from core.exceptions import PaymentProviderUnavailable
from modules.services import module_disable, module_enable
from payments.providers import Capability, PaymentProvider, provider_for, provider_with, providers_with
from payments.providers.manual import ManualProvider

# The registry reads which rails' modules are switched on.
pytestmark = pytest.mark.django_db

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


def test_stripe_is_503_until_its_key_is_set_and_then_is_the_preferred_card_rail(settings):
    from payments.providers.stripe.gateway import NOT_CONFIGURED
    from payments.providers.stripe.provider import StripeProvider

    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(PaymentProviderUnavailable) as raised:
        provider_for("stripe")
    assert raised.value.message == NOT_CONFIGURED
    with pytest.raises(PaymentProviderUnavailable):
        provider_with(Capability.OFF_SESSION_CHARGE)

    settings.STRIPE_SECRET_KEY = "sk_test_x"
    stripe_rail = provider_for("stripe")
    assert isinstance(stripe_rail, StripeProvider) and isinstance(stripe_rail, PaymentProvider)
    assert provider_with(Capability.HOSTED_CHECKOUT) is stripe_rail
    assert Capability.MERCHANT_OF_RECORD not in stripe_rail.capabilities


def test_a_rail_switched_off_as_a_module_is_used_for_nothing_until_switched_on(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_registry"
    actor = Actor.system("test")
    assert provider_with(Capability.OFF_SESSION_CHARGE).code == "stripe"

    module_disable(code="stripe", actor=actor)
    assert providers_with(Capability.OFF_SESSION_CHARGE) == []
    with pytest.raises(PaymentProviderUnavailable) as raised:
        provider_for("stripe")
    assert raised.value.code == "payment_provider_disabled" and raised.value.http_status == 503
    assert provider_for("cash").code == "manual"

    module_enable(code="stripe", actor=actor)
    assert provider_for("stripe").code == "stripe"
