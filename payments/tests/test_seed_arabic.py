"""`seed --demo` also creates Arabic-speaking customers billed in YER and SAR, through the same stories."""

from io import StringIO

import pytest
from django.core.management import call_command

from credits.selectors import credit_balance_mismatches
from payments.models import Invoice
from payments.seeding.data import ARABIC_DEMO_CUSTOMERS
from payments.selectors import invoice_total_mismatches
from subscriptions.models import Customer, Plan

AS_OF = "2025-06-15T12:00:00Z"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_run(settings):
    settings.DEBUG = True  # the README's run: the staff account gets its default password


def _seed() -> str:
    out = StringIO()
    call_command("seed", "--demo", "1", "--as-of", AS_OF, stdout=out)
    return out.getvalue()


def test_demo_seed_adds_arabic_speaking_customers_in_yer_and_sar_once():
    output = _seed()
    assert f"Arabic-speaking demo customers (YER, SAR): {len(ARABIC_DEMO_CUSTOMERS)} created." in output
    customers = Customer.objects.filter(external_id__in=[c.key for c in ARABIC_DEMO_CUSTOMERS])
    assert {c.currency for c in customers} == {"YER", "SAR"}
    assert all(c.preferred_language == "ar" and c.name_ar and c.metadata["phone"].startswith("+96") for c in customers)
    assert any(c.metadata["phone"].startswith("+967") for c in customers)
    for customer in customers:
        invoices = Invoice.objects.filter(customer=customer)
        assert invoices.exists() and {i.currency for i in invoices} == {customer.currency}
        assert {s.plan.currency for s in customer.subscriptions.select_related("plan")} == {customer.currency}
    # Yemeni rials have no minor unit in CLDR: the plan of 25,000 rials is stored as 25000.
    assert Plan.objects.get(code="pro-yer").amount == 25000 and Plan.objects.get(code="pro-sar").amount == 18900
    assert Plan.objects.get(code="pro-yer").name_ar == "الاحترافية"
    assert invoice_total_mismatches() == [] and credit_balance_mismatches() == []

    again = _seed()
    assert "Arabic-speaking" not in again
    assert Customer.objects.filter(external_id__in=[c.key for c in ARABIC_DEMO_CUSTOMERS]).count() == len(
        ARABIC_DEMO_CUSTOMERS)
