import pytest

from payments.providers import ProviderBase
from payments.providers.checks import payment_providers_check

DEFAULT = ["payments.providers.stripe.provider.StripeProvider", "payments.providers.manual.ManualProvider"]


def test_the_default_rails_pass_the_check(settings):
    settings.PAYMENT_PROVIDERS = DEFAULT
    assert payment_providers_check() == []


class RailWithAMissingWebhookView(ProviderBase):
    code = "nowhere"
    codes = frozenset({"nowhere"})
    webhook_view = "payments.providers.nowhere.views.webhook"


def test_a_rail_whose_webhook_view_cannot_be_imported_is_one_clear_check_error(settings):
    settings.PAYMENT_PROVIDERS = ["payments.tests.providers.test_checks.RailWithAMissingWebhookView"]

    errors = payment_providers_check()

    assert [error.id for error in errors] == ["payments.E005"]
    assert "payments.providers.nowhere.views.webhook" in errors[0].msg


@pytest.mark.parametrize(("paths", "error_id"), [
    ("payments.providers.manual.ManualProvider", "payments.E000"),
    (["payments.providers.nowhere.Rail"], "payments.E001"),
    (["payments.providers.manual.NoSuchRail"], "payments.E001"),
    (["not a path"], "payments.E001"),
    (["payments.models.Payment"], "payments.E002"),
    (["payments.providers.base.ProviderBase"], "payments.E002"),
    ([*DEFAULT, "payments.providers.manual.ManualProvider"], "payments.E004"),
])
def test_a_wrong_rail_entry_is_one_clear_check_error(settings, paths, error_id):
    settings.PAYMENT_PROVIDERS = paths

    errors = payment_providers_check()

    assert [error.id for error in errors] == [error_id]
    assert errors[0].msg
