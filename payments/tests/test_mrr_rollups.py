"""The invoice side of the MRR rollups: every change to the issued plan fee lines updates them in its own
transaction (issue one or a batch, finalize a draft, void), at a constant number of statements per batch;
concurrent writers for one customer serialize; `billing verify` catches a corrupted rollup and
`billing rollups-rebuild` repairs it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing_project.tests.threads import race
from core.audit import Actor
from payments.billing.invoicing import InvoiceDraft, invoices_issue
from payments.models import BillingReason, InvoiceLineKind
from payments.services import invoice_finalize, invoice_void
from payments.services.invoices import LineSpec, invoice_create
from payments.services.mrr_rollup_rebuild import mrr_rollup_mismatches
from payments.services.mrr_rollups import mrr_rollups_refresh
from subscriptions.models import (
    CustomerMrrChange,
    CustomerMrrMonth,
    MrrMonth,
    Subscription,
    SubscriptionFeeMonth,
    SubscriptionFeeSpan,
    SubscriptionStatus,
)
from subscriptions.periods import add_months
from subscriptions.services import subscription_cancel
from subscriptions.tests.factories import CustomerFactory, PlanFactory

JAN = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = Actor.system("test:rollups")


def _subscription(**customer) -> Subscription:
    return Subscription.objects.create(customer=CustomerFactory(**customer), plan=PlanFactory(),
                                       status=SubscriptionStatus.ACTIVE, billing_cycle_anchor=JAN,
                                       current_period_start=JAN, current_period_end=add_months(JAN, 1))


def _draft(sub: Subscription, start: datetime, amount: int = 1000, months: int = 1) -> InvoiceDraft:
    end = add_months(start, months)
    return InvoiceDraft(customer_id=sub.customer_id, currency="USD", subscription_id=sub.pk,
                        billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=start, period_end=end,
                        lines=[LineSpec(kind=InvoiceLineKind.SUBSCRIPTION, description="fee",
                                        unit_amount=Decimal(amount), period_start=start, period_end=end)])


def _mrr(month: datetime) -> int:
    row = MrrMonth.objects.filter(currency="USD", month=month).first()
    return row.mrr if row else 0


@pytest.mark.django_db
def test_issuing_a_batch_writes_every_customers_months_and_a_year_fee_per_month():
    monthly, yearly = _subscription(), _subscription()
    invoices_issue(drafts=[_draft(monthly, JAN), _draft(yearly, JAN, amount=12000 + 7, months=12)], actor=ACTOR,
                   now=JAN)
    assert SubscriptionFeeMonth.objects.filter(subscription=yearly).count() == 12
    # 12,007 / 12 = 1,000.58 rounds half-up to 1,001 for the customer's month.
    assert CustomerMrrMonth.objects.get(customer_id=yearly.customer_id, month=add_months(JAN, 5)).mrr == 1001
    assert (_mrr(JAN), _mrr(add_months(JAN, 1))) == (2001, 1001)
    assert MrrMonth.objects.get(currency="USD", month=JAN).customers_paying == 2
    assert mrr_rollup_mismatches() == []


@pytest.mark.django_db
def test_a_finalized_draft_counts_and_a_voided_invoice_stops_counting():
    sub = _subscription()
    draft = invoice_create(customer=sub.customer, subscription=sub, billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
                           period_start=JAN, period_end=add_months(JAN, 1), lines=[LineSpec(
                               kind=InvoiceLineKind.SUBSCRIPTION, description="fee", unit_amount=Decimal(2500),
                               period_start=JAN, period_end=add_months(JAN, 1))])
    assert _mrr(JAN) == 0
    invoice = invoice_finalize(invoice=draft, actor=ACTOR, now=JAN)
    assert _mrr(JAN) == 2500 and MrrMonth.objects.get(currency="USD", month=add_months(JAN, -1)).new == 2500
    invoice_void(invoice=invoice, actor=ACTOR)
    assert _mrr(JAN) == 0 and not SubscriptionFeeMonth.objects.exists()
    assert not MrrMonth.objects.exclude(mrr=0, new=0, customers_covered=0, customers_paying=0).exists()
    assert mrr_rollup_mismatches() == []


@pytest.mark.django_db
def test_the_refresh_costs_the_same_statements_for_2_and_40_customers():
    counts = {}
    for size in (2, 40):
        subs = [_subscription() for _ in range(size)]
        invoices_issue(drafts=[_draft(sub, JAN) for sub in subs], actor=ACTOR, now=JAN)
        invoices_issue(drafts=[_draft(sub, add_months(JAN, 1)) for sub in subs], actor=ACTOR, now=JAN)
        with CaptureQueriesContext(connection) as context:
            mrr_rollups_refresh(customer_ids=[sub.customer_id for sub in subs])
        counts[size] = len(context)
    # Nothing changed: lock, read the lines, read the fee months and spans, read the customer rollups (3:
    # change points, months, first fees).
    assert counts[2] == counts[40] <= 9
    assert mrr_rollup_mismatches() == []


def _changes(customer_id: int) -> list[tuple]:
    return list(CustomerMrrChange.objects.filter(customer_id=customer_id).order_by("changed_at").values_list(
        "changed_at", "mrr_before", "mrr_after", "covered_before", "covered_after"))


@pytest.mark.django_db
def test_a_same_price_renewal_is_no_change_point_and_a_new_price_is_one():
    sub = _subscription()
    start = JAN + timedelta(days=9, hours=7)
    invoices_issue(drafts=[_draft(sub, start)], actor=ACTOR, now=start)
    invoices_issue(drafts=[_draft(sub, add_months(start, 1))], actor=ACTOR, now=start)
    # One span for both periods; the drop to 0 moved to the end of the second.
    assert list(SubscriptionFeeSpan.objects.values_list("starts_at", "ends_at")) == [(start, add_months(start, 2))]
    assert _changes(sub.customer_id) == [(start, 0, 1000, False, True), (add_months(start, 2), 1000, 0, True, False)]
    invoices_issue(drafts=[_draft(sub, add_months(start, 2), amount=2500)], actor=ACTOR, now=start)
    assert _changes(sub.customer_id) == [(start, 0, 1000, False, True), (add_months(start, 2), 1000, 2500, True, True),
                                         (add_months(start, 3), 2500, 0, True, False)]
    assert mrr_rollup_mismatches() == []


@pytest.mark.django_db
def test_a_cancellation_inside_a_period_moves_the_drop_to_the_cancellation_instant():
    sub = _subscription()
    # A second subscription of the customer, ending later (one live subscription per customer).
    other = Subscription.objects.create(customer=sub.customer, plan=PlanFactory(), status=SubscriptionStatus.CANCELED,
                                        ended_at=add_months(JAN, 12), billing_cycle_anchor=JAN,
                                        current_period_start=JAN, current_period_end=add_months(JAN, 1))
    invoices_issue(drafts=[_draft(sub, JAN, amount=3000, months=3), _draft(other, JAN, amount=1001)], actor=ACTOR,
                   now=JAN)
    canceled_at = add_months(JAN, 1) + timedelta(days=4, seconds=1)
    subscription_cancel(subscription=sub, actor=ACTOR, now=canceled_at)
    assert _changes(sub.customer_id) == [(JAN, 0, 2001, False, True), (add_months(JAN, 1), 2001, 1000, True, True),
                                         (canceled_at, 1000, 0, True, False)]
    assert mrr_rollup_mismatches() == []


@pytest.mark.django_db
def test_a_price_change_batch_costs_the_same_statements_for_2_and_40_customers():
    """Every rollup moves (fee months added, spans cut, change points added and moved, customer months,
    MrrMonth): still a constant number of statements for the batch, its rollup share included."""
    counts = {}
    for size in (2, 40):
        subs = [_subscription() for _ in range(size)]
        invoices_issue(drafts=[_draft(sub, JAN) for sub in subs], actor=ACTOR, now=JAN)
        invoices_issue(drafts=[_draft(sub, add_months(JAN, 1)) for sub in subs], actor=ACTOR, now=JAN)
        with CaptureQueriesContext(connection) as context:
            invoices_issue(drafts=[_draft(sub, add_months(JAN, 2), amount=1500) for sub in subs], actor=ACTOR,
                           now=JAN)
        counts[size] = len(context)
        assert CustomerMrrChange.objects.filter(customer_id__in=[s.customer_id for s in subs]).count() == 3 * size
    assert counts[2] == counts[40]
    assert mrr_rollup_mismatches() == []


@pytest.mark.django_db
def test_verify_fails_on_a_corrupted_rollup_and_rebuild_repairs_it(capsys):
    subs = [_subscription(), _subscription()]
    invoices_issue(drafts=[_draft(sub, JAN) for sub in subs], actor=ACTOR, now=JAN)
    call_command("billing", "verify")
    MrrMonth.objects.filter(currency="USD", month=JAN).update(mrr=1)
    CustomerMrrMonth.objects.filter(customer_id=subs[0].customer_id).update(mrr=7)
    SubscriptionFeeMonth.objects.filter(subscription=subs[1]).delete()
    SubscriptionFeeSpan.objects.filter(subscription=subs[0]).update(ends_at=add_months(JAN, 2))
    CustomerMrrChange.objects.filter(customer_id=subs[1].customer_id, changed_at=JAN).update(mrr_after=999)
    with pytest.raises(CommandError, match="5 mismatch"):
        call_command("billing", "verify")
    out = capsys.readouterr().out
    assert "mrr_month:" in out and "mrr_customer_month:" in out and "mrr_fee_month:" in out
    assert "mrr_fee_span:" in out and "mrr_change:" in out
    call_command("billing", "rollups-rebuild")
    call_command("billing", "verify")
    assert _mrr(JAN) == 2000


@pytest.mark.django_db(transaction=True)
def test_concurrent_invoices_of_one_customer_leave_consistent_rollups():
    first = _subscription()
    second = Subscription.objects.create(customer=first.customer, plan=PlanFactory(),
                                         status=SubscriptionStatus.CANCELED, ended_at=add_months(JAN, 6),
                                         billing_cycle_anchor=JAN, current_period_start=JAN,
                                         current_period_end=add_months(JAN, 1))

    def issue(sub: Subscription, amount: int):
        def target():
            with transaction.atomic():
                invoices_issue(drafts=[_draft(sub, JAN, amount=amount, months=3)], actor=ACTOR, now=JAN)
        return target

    # Quarterly fees: 3,000 and 6,000 a quarter are 1,000 and 2,000 a month.
    outcome = race([issue(first, 3000), issue(second, 6000)], join_timeout=60)
    assert outcome.errors == []
    assert _mrr(JAN) == _mrr(add_months(JAN, 2)) == 3000 and _mrr(add_months(JAN, 3)) == 0
    assert MrrMonth.objects.get(currency="USD", month=add_months(JAN, -1)).new == 3000
    assert mrr_rollup_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_an_invoice_and_a_cancellation_racing_for_one_customer_leave_consistent_rollups():
    """No invoice number lock between these two: only the rollups' per-customer lock orders them."""
    first = _subscription()
    second = Subscription.objects.create(customer=first.customer, plan=PlanFactory(),
                                         status=SubscriptionStatus.CANCELED, ended_at=add_months(JAN, 12),
                                         billing_cycle_anchor=JAN, current_period_start=JAN,
                                         current_period_end=add_months(JAN, 1))
    invoices_issue(drafts=[_draft(second, JAN, amount=6000, months=3)], actor=ACTOR, now=JAN)
    invoices_issue(drafts=[_draft(first, add_months(JAN, -1), amount=1000, months=1)], actor=ACTOR, now=JAN)

    def issue():
        with transaction.atomic():
            invoices_issue(drafts=[_draft(first, JAN, amount=3000, months=3)], actor=ACTOR, now=JAN)

    def cancel():
        subscription_cancel(subscription=first, actor=ACTOR, now=add_months(JAN, 1) + timedelta(days=1))

    outcome = race([issue, cancel], join_timeout=60)
    assert outcome.errors == []
    assert mrr_rollup_mismatches() == []
    assert (_mrr(JAN), _mrr(add_months(JAN, 1)), _mrr(add_months(JAN, 2))) == (3000, 3000, 2000)
