"""The contract suite runs every test once per rail (`rail` fixture); a test that needs a capability the
rail lacks skips, naming it. Adding a rail: one harness in rails.py and its name in RAILS."""

import pytest

from payments.tests.providers.contract.rails import HARNESSES

RAILS = ("stripe", "paypal", "lemonsqueezy", "manual")


@pytest.fixture(params=RAILS)
def rail(request, settings, db):
    return HARNESSES[request.param](settings=settings, request=request)
