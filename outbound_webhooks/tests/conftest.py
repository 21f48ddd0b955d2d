import pytest


@pytest.fixture(autouse=True)
def _loopback_receivers_allowed(settings):
    # The tests' receivers listen on loopback, which production refuses by default.
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
