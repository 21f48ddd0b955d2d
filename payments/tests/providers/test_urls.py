"""Each installed rail that declares a webhook view gets /webhooks/<code>/; the others get nothing."""

from django.urls import resolve

from payments.providers.urls import _webhook_paths


def test_only_rails_with_a_webhook_view_are_mounted_under_their_code(settings):
    settings.PAYMENT_PROVIDERS = ["payments.providers.stripe.provider.StripeProvider",
                                 "payments.tests.providers.fake_rail.FakeRail",
                                 "payments.providers.manual.ManualProvider"]

    paths = _webhook_paths()

    assert [(str(p.pattern), p.name) for p in paths] == [("stripe/", "stripe-webhook")]
    assert resolve("/webhooks/stripe/").url_name == "stripe-webhook"


def test_a_rail_that_cannot_be_loaded_leaves_the_webhook_urls_empty_for_the_system_check_to_report(settings):
    settings.PAYMENT_PROVIDERS = ["payments.providers.nowhere.Rail"]

    assert _webhook_paths() == []
