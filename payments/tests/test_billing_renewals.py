from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.audit import Actor
from credits.models import PLAN_REFILL_PRIORITY, CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get
from credits.services import credit_plan_refill
from payments.billing.resume import subscription_resume_billed
from payments.billing.run import billing_run
from payments.models import BillingReason, Invoice, InvoiceLineKind, InvoiceStatus
from payments.tests.conftest import T0, make_due_subscription
from payments.tests.factories import StripeCustomerFactory
from subscriptions.models import SubscriptionEventKind, SubscriptionStatus
from subscriptions.services import subscription_pause
from subscriptions.tests.factories import PlanFactory
from usage.models import UsageEvent

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
MAR_31 = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
APR_30 = datetime(2026, 4, 30, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _usage(customer, meter, quantity, when):
    UsageEvent.objects.create(customer=customer, meter=meter, quantity=Decimal(quantity), occurred_at=when,
                              idempotency_key=f"k-{customer.pk}-{when.isoformat()}-{quantity}")


def test_renewal_invoices_fee_in_advance_and_usage_beyond_included_in_arrears(metered_plan):
    plan, meter = metered_plan
    sub = make_due_subscription(plan=plan)
    _usage(sub.customer, meter, 150, T0 + timedelta(days=3))
    _usage(sub.customer, meter, 25.5, T0 + timedelta(days=9))
    _usage(sub.customer, meter, 1000, FEB_28 + timedelta(hours=1))  # next period: not billed yet

    summary = billing_run(as_of=FEB_28)

    sub.refresh_from_db()
    assert (sub.current_period_start, sub.current_period_end) == (FEB_28, MAR_31)
    invoice = Invoice.objects.get(subscription=sub)
    assert invoice.billing_reason == BillingReason.SUBSCRIPTION_CYCLE
    assert (invoice.period_start, invoice.period_end) == (FEB_28, MAR_31)
    assert invoice.status == InvoiceStatus.OPEN and invoice.number.startswith("INV-2026-")
    fee, usage = invoice.lines.order_by("id")
    assert (fee.kind, fee.amount, fee.period_start, fee.period_end) == (InvoiceLineKind.SUBSCRIPTION, 2000,
                                                                        FEB_28, MAR_31)
    assert usage.kind == InvoiceLineKind.USAGE and usage.meter_id == meter.pk
    assert usage.quantity == Decimal("75.5") and usage.amount == 38  # 37.75 rounded half-up once
    assert (usage.period_start, usage.period_end) == (T0, FEB_28)
    assert invoice.subtotal == invoice.total == invoice.amount_due == 2038
    assert summary.counts["renewed"] == 1 and summary.counts["invoiced"] == 1
    assert sub.events.filter(kind=SubscriptionEventKind.RENEWED, data__invoice_id=invoice.pk).exists()


def test_renewal_refills_credits_expiring_at_period_end_and_expires_the_old_grant(metered_plan):
    plan, _ = metered_plan
    sub = make_due_subscription(plan=plan)
    billing_run(as_of=FEB_28)
    billing_run(as_of=MAR_31)

    grants = list(CreditGrant.objects.filter(customer=sub.customer).order_by("id"))
    assert [(g.effective_at, g.expires_at) for g in grants] == [(FEB_28, MAR_31), (MAR_31, APR_30)]
    assert grants[0].remaining == 0 and grants[0].expired_at == MAR_31
    assert credit_balance_get(customer=sub.customer) == 100
    kinds = list(CreditLedgerEntry.objects.filter(customer=sub.customer).order_by("id").values_list("kind", "amount"))
    assert kinds == [(LedgerKind.GRANT, 100), (LedgerKind.GRANT, 100), (LedgerKind.EXPIRY, -100)]


def _refill_shape(sub) -> tuple:
    """The terms of the subscription's one grant, its dates compared with the period it refills."""
    sub.refresh_from_db()
    grant = CreditGrant.objects.get(customer=sub.customer)
    return (grant.amount, grant.remaining, grant.priority, grant.source,
            (grant.effective_at, grant.expires_at) == (sub.current_period_start, sub.current_period_end),
            grant.description == f"{sub.plan.name} credits for the period from {sub.current_period_start:%Y-%m-%d}")


def test_every_refill_path_writes_the_same_grant_at_the_refill_priority():
    plan = PlanFactory(amount=1000, credits_per_period=40)
    renewed, refilled, resumed = (make_due_subscription(plan=plan) for _ in range(3))
    subscription_pause(subscription=resumed, actor=Actor.system("test"), now=T0 + timedelta(days=1))
    billing_run(as_of=FEB_28)
    refilled.refresh_from_db()
    credit_plan_refill(subscription=refilled, actor=Actor.system("test"))
    subscription_resume_billed(subscription=resumed, actor=Actor.system("test"), now=MAR_31)

    shapes = [_refill_shape(sub) for sub in (renewed, refilled, resumed)]
    assert shapes == [(40, 40, PLAN_REFILL_PRIORITY, CreditSource.PLAN_REFILL, True, True)] * 3


def test_rollover_plan_refill_never_expires():
    plan = PlanFactory(credits_per_period=10, credits_rollover=True)
    sub = make_due_subscription(plan=plan)
    billing_run(as_of=FEB_28)
    billing_run(as_of=MAR_31)
    assert credit_balance_get(customer=sub.customer) == 20
    assert not CreditGrant.objects.filter(customer=sub.customer, expires_at__isnull=False).exists()


def test_scheduled_downgrade_applies_at_renewal():
    big, small = PlanFactory(amount=5000), PlanFactory(amount=1000, credits_per_period=7)
    sub = make_due_subscription(plan=big, scheduled_plan=small)
    billing_run(as_of=FEB_28)
    sub.refresh_from_db()
    assert sub.plan == small and sub.scheduled_plan is None
    assert Invoice.objects.get(subscription=sub).total == 1000
    assert credit_balance_get(customer=sub.customer) == 7
    assert sub.events.filter(kind=SubscriptionEventKind.PLAN_CHANGED, from_plan=big, to_plan=small).exists()


def test_cancel_at_period_end_ends_instead_of_renewing_and_bills_last_usage(metered_plan):
    plan, meter = metered_plan
    sub = make_due_subscription(plan=plan, cancel_at_period_end=True)
    _usage(sub.customer, meter, 300, T0 + timedelta(days=1))
    summary = billing_run(as_of=FEB_28)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED and sub.ended_at == FEB_28
    assert not sub.cancel_at_period_end
    invoice = Invoice.objects.get(subscription=sub)
    assert [line.kind for line in invoice.lines.all()] == [InvoiceLineKind.USAGE]
    assert invoice.total == 100 and invoice.metadata == {"final": True}
    assert not CreditGrant.objects.filter(customer=sub.customer).exists()
    assert summary.counts["canceled"] == 1 and "renewed" not in summary.counts


def test_free_plan_renews_without_an_invoice():
    sub = make_due_subscription(plan=PlanFactory(amount=0, credits_per_period=5))
    billing_run(as_of=FEB_28)
    sub.refresh_from_db()
    assert sub.current_period_end == MAR_31
    assert not Invoice.objects.exists()
    assert credit_balance_get(customer=sub.customer) == 5


def test_paused_and_incomplete_subscriptions_are_not_renewed():
    paused = make_due_subscription(status=SubscriptionStatus.PAUSED)
    incomplete = make_due_subscription(status=SubscriptionStatus.INCOMPLETE)
    billing_run(as_of=FEB_28)
    for sub in (paused, incomplete):
        sub.refresh_from_db()
        assert sub.current_period_end == FEB_28
    assert not Invoice.objects.exists()


def test_subscription_several_periods_behind_gets_each_period_invoiced_once():
    sub = make_due_subscription()
    billing_run(as_of=APR_30)
    sub.refresh_from_db()
    assert sub.current_period_end == datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
    starts = list(Invoice.objects.filter(subscription=sub).order_by("period_start").values_list("period_start",
                                                                                                flat=True))
    assert starts == [FEB_28, MAR_31, APR_30]


def _trial(*, plan, customer=None, days=14):
    trial_end = T0 + timedelta(days=days)
    sub = make_due_subscription(plan=plan, customer=customer, status=SubscriptionStatus.TRIALING, trial_start=T0,
                                trial_end=trial_end, anchor=trial_end)
    sub.current_period_start, sub.current_period_end = T0, trial_end
    sub.save()
    return sub, trial_end


def test_trial_with_payment_method_converts_to_active_and_is_invoiced(collect_outcomes):
    customer = StripeCustomerFactory(user=None, stripe_default_payment_method_id="pm_card_visa")
    sub, trial_end = _trial(plan=PlanFactory(amount=1500, trial_days=14), customer=customer)
    summary = billing_run(as_of=trial_end)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.current_period_start == trial_end
    invoice = Invoice.objects.get(subscription=sub)
    assert invoice.billing_reason == BillingReason.SUBSCRIPTION_CREATE and invoice.total == 1500
    assert summary.counts["trials_converted"] == 1
    assert collect_outcomes[1] == [(invoice.pk, 0)]  # and collection was attempted right away


@pytest.mark.parametrize("require", [True, False])
def test_trial_without_payment_method_cancels_only_when_a_method_is_required(settings, require):
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = require
    sub, trial_end = _trial(plan=PlanFactory(amount=1500), days=7)
    # Forty days on: the trial ends, and the first paid period then ends too.
    billing_run(as_of=trial_end + timedelta(days=40))
    sub.refresh_from_db()
    if require:
        assert sub.status == SubscriptionStatus.CANCELED
        assert not Invoice.objects.exists()
    else:
        assert sub.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
        assert Invoice.objects.filter(subscription=sub).count() == 2


def test_dry_run_reports_the_same_counts_and_writes_nothing(metered_plan):
    plan, _ = metered_plan
    subs = [make_due_subscription(plan=plan) for _ in range(3)]
    dry = billing_run(as_of=FEB_28, dry_run=True)
    assert not Invoice.objects.exists() and not CreditGrant.objects.exists()
    for sub in subs:
        sub.refresh_from_db()
        assert sub.current_period_end == FEB_28
    real = billing_run(as_of=FEB_28)
    assert dry.counts == real.counts and dry.dry_run and "Dry run" in dry.line()


def test_limit_caps_each_step():
    for _ in range(5):
        make_due_subscription()
    summary = billing_run(as_of=FEB_28, limit=2, batch_size=1)
    assert summary.counts["renewed"] == 2
    assert billing_run(as_of=FEB_28).counts["renewed"] == 3


def test_renewal_batch_query_count_does_not_grow_with_batch_size(metered_plan):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from payments.billing.common import RUN_ACTOR
    from payments.billing.lines import catalog_load
    from payments.billing.renewals import RENEWALS, renewal_batch

    plan, meter = metered_plan
    catalog = catalog_load()
    queries = {}
    for size in (2, 40):
        subs = [make_due_subscription(plan=plan, anchor=T0 + timedelta(seconds=size)) for _ in range(size)]
        for sub in subs[::2]:
            _usage(sub.customer, meter, 500, T0 + timedelta(days=2))
        with CaptureQueriesContext(connection) as context:
            counts = renewal_batch(step=RENEWALS, as_of=subs[0].current_period_end, batch_size=size,
                                   actor=RUN_ACTOR, catalog=catalog)
        assert counts.counts["renewed"] == counts.counts["invoiced"] == counts.counts["refilled"] == size
        queries[size] = len(context)
    # 16 for the renewals themselves, plus the report rollups' constant share: MRR 10 (payments.services.
    # mrr_rollups, one call per batch with its change points, payments/tests/test_mrr_rollups.py pins it),
    # money 2 (the batch's invoices counted in the revenue rollup: one read, one upsert), credits per day 1
    # (the refill grants' day rows) and subscriptions at a date 3 (states before, month and instant deltas).
    # The rollup increments are held to the batch's tail (core.increments.increments_deferred), which costs a
    # second deferred-check statement before the numbering and merges repeated upserts of one rollup table.
    assert queries[2] == queries[40] <= 16 + 10 + 2 + 1 + 3


def test_a_renewal_batch_writes_each_subscription_row_once_with_its_status_move():
    """Period, plan and the past-due move of a failed first attempt land in one UPDATE of the batch's rows;
    the renewal and status audit rows are written together, renewal first, as two separate writes did."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    subs = [make_due_subscription() for _ in range(3)]  # nobody can pay: first attempts fail at issue
    with CaptureQueriesContext(connection) as context:
        billing_run(as_of=FEB_28)
    updates = [q["sql"] for q in context.captured_queries
               if q["sql"].startswith(('UPDATE "subscriptions_subscription"', "UPDATE subscriptions_subscription"))]
    assert len(updates) == 1
    for sub in subs:
        sub.refresh_from_db()
        assert (sub.status, sub.current_period_start) == (SubscriptionStatus.PAST_DUE, FEB_28)
        events = list(sub.events.filter(created_at__gt=T0).order_by("id").values_list("kind", "from_status",
                                                                                         "to_status"))
        assert events == [(SubscriptionEventKind.RENEWED, "active", "active"),
                          (SubscriptionEventKind.STATUS_CHANGED, "active", "past_due")]


def test_a_renewal_batch_runs_without_the_cyclic_collector_and_restores_it(monkeypatch):
    import gc

    from payments.billing import renewals

    make_due_subscription()
    real_decide, seen = renewals.renewal_decide, []

    def decide(**kwargs):
        seen.append(gc.isenabled())
        return real_decide(**kwargs)

    monkeypatch.setattr(renewals, "renewal_decide", decide)
    billing_run(as_of=FEB_28)
    assert seen == [False] and gc.isenabled()


def test_a_converted_trial_whose_first_attempt_fails_moves_twice_in_order(settings):
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = False
    sub, trial_end = _trial(plan=PlanFactory(amount=1500), days=7)
    billing_run(as_of=trial_end)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE
    moves = list(sub.events.filter(kind=SubscriptionEventKind.STATUS_CHANGED).order_by("id")
                 .values_list("from_status", "to_status"))
    assert moves[-2:] == [("trialing", "active"), ("active", "past_due")]


def test_a_claim_carries_the_saved_method_annotation_under_the_name_its_readers_use():
    """`row_has_saved_payment_method` (trial conversion) reads HAS_SAVED_METHOD off the row it is given; a
    claim is a plain value, so its field must bear that name or every claim would look unannotated."""
    from dataclasses import fields

    from payments.billing.renewals import _CLAIMED_COLUMNS, ClaimedSubscription
    from payments.selectors.provider_accounts import HAS_SAVED_METHOD, row_has_saved_payment_method

    names = [f.name for f in fields(ClaimedSubscription)]
    assert HAS_SAVED_METHOD in names
    assert names.index(HAS_SAVED_METHOD) == _CLAIMED_COLUMNS.index(HAS_SAVED_METHOD)  # read by position
    claim = ClaimedSubscription(*range(len(_CLAIMED_COLUMNS)))
    setattr(claim, HAS_SAVED_METHOD, False)
    assert row_has_saved_payment_method(row=claim, customer=claim.customer) is False
