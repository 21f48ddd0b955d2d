"""`billing run` skips the steps of disabled modules and says so."""

from datetime import timedelta

import pytest

from core.audit import Actor
from credits.models import CreditGrant
from credits.services import credit_grant
from modules.services import module_disable
from payments.billing.run import billing_run
from payments.models import Invoice
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
AS_OF = T0 + timedelta(days=40)


def test_invoicing_disabled_leaves_renewals_and_collection_undone(metered_plan):
    plan, _ = metered_plan
    subscription = make_due_subscription(plan=plan)
    module_disable(code="invoicing", actor=ACTOR)

    summary = billing_run(as_of=AS_OF)

    assert summary.skipped == ("trials", "renewals", "collection")
    assert not Invoice.objects.exists()
    subscription.refresh_from_db()
    assert subscription.current_period_start == T0
    assert "Skipped (module disabled): trials, renewals, collection." in summary.line()


def test_credits_disabled_skips_expiry_only(metered_plan):
    plan, _ = metered_plan
    make_due_subscription(plan=plan)
    customer = CustomerFactory(user=None)
    credit_grant(customer=customer, amount=10, source="promotion", actor=ACTOR, effective_at=T0,
                 expires_at=T0 + timedelta(days=1))
    module_disable(code="credits", actor=ACTOR)

    summary = billing_run(as_of=AS_OF)

    assert summary.skipped == ("expiry",)
    assert summary.counts.get("renewed") == 1 and not summary.counts.get("expired")
    assert CreditGrant.objects.get(customer=customer).remaining == 10


def test_dunning_disabled_skips_collection_only(metered_plan):
    plan, _ = metered_plan
    make_due_subscription(plan=plan)
    module_disable(code="dunning", actor=ACTOR)

    summary = billing_run(as_of=AS_OF)

    assert summary.skipped == ("collection",)
    assert summary.counts.get("renewed") == 1 and not summary.counts.get("failed")
    # Not even the first attempt of an invoice nobody can pay is recorded at issue: it stays due.
    invoice = Invoice.objects.get()
    assert invoice.attempt_count == 0 and invoice.next_attempt_at == invoice.issued_at
