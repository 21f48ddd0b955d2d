"""The money reports answered from the daily rollups (payments.money_models) equal their definitions over
the source rows (reports/tests/money_reference.py) after every kind of change made through the real
services, for whole-day ranges and ranges that start and end inside days, and `billing verify` finds
nothing; the selectors cost a constant number of queries."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.audit import Actor
from payments.billing.invoicing import InvoiceDraft, invoices_issue
from payments.models import (
    BillingReason,
    Invoice,
    InvoiceLineKind,
    InvoiceStatus,
    PaymentDay,
    PaymentMethod,
    PaymentStatus,
    RevenueDay,
)
from payments.providers.manual.services import payment_record_manual
from payments.services import (
    LineSpec,
    invoice_lock,
    invoice_transition,
    invoice_void,
    payment_create,
    payment_lock,
    payment_refund,
    payment_transition,
    subscription_change_plan,
    subscription_start,
)
from payments.services.money_rollup_rebuild import money_rollup_mismatches
from reports.selectors import (
    REVENUE_GROUPS,
    ReportRange,
    report_collected_by_month_and_method,
    report_payment_summary,
    report_revenue,
)
from reports.tests import money_reference as reference
from subscriptions.models import CustomerMrrMonth, MrrMonth
from subscriptions.tests.factories import CustomerFactory, PlanFactory

ACTOR = Actor.system("test:money-rollups")


def _ranges(now: datetime) -> list[ReportRange]:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        ReportRange(start=day - timedelta(days=40), end=day + timedelta(days=2)),  # whole days
        ReportRange(start=now - timedelta(minutes=90), end=now + timedelta(minutes=90)),  # inside one or two days
        # A partial first day, whole days, a partial last day; and one currency only.
        ReportRange(start=day - timedelta(days=4, hours=-7, minutes=-13), end=now + timedelta(seconds=1)),
        ReportRange(start=day - timedelta(days=4, hours=-7, minutes=-13), end=now + timedelta(seconds=1),
                    currency="USD"),
        ReportRange(start=day - timedelta(days=3, hours=-2), end=day - timedelta(days=3, hours=-9)),
    ]


def assert_reports_match_their_definitions(now: datetime) -> None:
    for period in _ranges(now):
        assert report_payment_summary(period=period) == reference.report_payment_summary(period=period), period
        for group_by in REVENUE_GROUPS:
            assert report_revenue(period=period, group_by=group_by) == reference.report_revenue(
                period=period, group_by=group_by), (period, group_by)
        assert (report_collected_by_month_and_method(period=period)
                == reference.report_collected_by_month_and_method(period=period)), period
    assert money_rollup_mismatches() == []


def _started(plan, **customer):
    subscription, invoice = subscription_start(customer=CustomerFactory(**customer), plan=plan, actor=ACTOR,
                                               with_trial=False)
    return subscription, invoice


def _draft(subscription, start: datetime, amount: int) -> InvoiceDraft:
    end = start + timedelta(days=30)
    return InvoiceDraft(customer_id=subscription.customer_id, currency="USD", subscription_id=subscription.pk,
                        billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=start, period_end=end,
                        lines=[LineSpec(kind=InvoiceLineKind.SUBSCRIPTION, description="fee",
                                        unit_amount=Decimal(amount), period_start=start, period_end=end)])


@pytest.mark.django_db
def test_every_service_keeps_the_reports_equal_to_their_definitions():
    now = timezone.now()
    basic, pro = PlanFactory(amount=2500, trial_days=0), PlanFactory(amount=4000, trial_days=0)
    paid_sub, paid_invoice = _started(basic)
    assert_reports_match_their_definitions(now)

    payment = payment_record_manual(customer=paid_sub.customer, amount=2500, method=PaymentMethod.CASH,
                                    invoice=paid_invoice, actor=ACTOR)
    assert_reports_match_their_definitions(now)
    payment_refund(payment=payment, amount=500, actor=ACTOR)  # manual: succeeds at once, partly refunded
    assert_reports_match_their_definitions(now)
    payment_refund(payment=payment, actor=ACTOR)  # the rest: refunded
    assert_reports_match_their_definitions(now)

    written_off_sub, written_off = _started(basic)
    with transaction.atomic():  # a card payment that fails
        failed = payment_create(customer=written_off_sub.customer, invoice=written_off, amount=2500, currency="USD",
                                method=PaymentMethod.STRIPE, provider="stripe")
        payment_transition(payment=payment_lock(payment_id=failed.pk), to_status=PaymentStatus.FAILED, actor=ACTOR)
    with transaction.atomic():
        invoice_transition(invoice=invoice_lock(invoice_id=written_off.pk), to_status=InvoiceStatus.UNCOLLECTIBLE,
                           actor=ACTOR)
    assert_reports_match_their_definitions(now)
    # Money arriving on a written-off invoice lowers what is written off.
    payment_record_manual(customer=written_off_sub.customer, amount=1000, method=PaymentMethod.CHECK,
                          invoice=written_off, actor=ACTOR)
    assert_reports_match_their_definitions(now)

    _, voided = _started(basic)
    invoice_void(invoice=voided, actor=ACTOR)
    assert_reports_match_their_definitions(now)

    # The billing run's batch, three days ago and today.
    batch = [_started(basic)[0] for _ in range(3)]
    invoices_issue(drafts=[_draft(sub, now - timedelta(days=3), 2500 + n) for n, sub in enumerate(batch)],
                   actor=ACTOR, now=now - timedelta(days=3, hours=-3))
    assert_reports_match_their_definitions(now)

    # Revenue by plan keys a subscription's whole history by its plan today: an upgrade moves it.
    subscription_change_plan(subscription=paid_sub, new_plan=pro, actor=ACTOR)
    assert_reports_match_their_definitions(now)
    assert RevenueDay.objects.filter(plan_id=pro.pk, refunded=2500).exists()


@pytest.mark.django_db
def test_a_range_inside_one_day_reads_only_the_payments_of_that_range():
    now = timezone.now()
    _, invoice = _started(PlanFactory(amount=700, trial_days=0))
    payment_record_manual(customer=invoice.customer, amount=700, method=PaymentMethod.BANK_TRANSFER,
                          invoice=invoice, actor=ACTOR, now=now)
    inside = ReportRange(start=now - timedelta(seconds=1), end=now + timedelta(minutes=1))
    before = ReportRange(start=now - timedelta(hours=1), end=now - timedelta(seconds=1))
    assert [r.collected for r in report_revenue(period=inside, group_by="method") if r.key] == [700]
    assert report_collected_by_month_and_method(period=before) == []
    assert_reports_match_their_definitions(now)


def _queries(run) -> int:
    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries.captured_queries)


@pytest.mark.django_db
def test_the_reports_cost_a_constant_number_of_queries_whatever_the_rows():
    now = timezone.now()
    period = ReportRange(start=now - timedelta(days=10, hours=5), end=now + timedelta(hours=1))
    whole_days = ReportRange(start=datetime(2020, 1, 1, tzinfo=UTC), end=datetime(2030, 1, 1, tzinfo=UTC))
    plan = PlanFactory(amount=900, trial_days=0)

    def costs() -> list[int]:
        return [_queries(lambda: report_payment_summary(period=period)),
                _queries(lambda: report_revenue(period=period, group_by="month")),
                _queries(lambda: report_revenue(period=period, group_by="plan")),
                _queries(lambda: report_collected_by_month_and_method(period=period)),
                _queries(lambda: report_revenue(period=whole_days, group_by="method"))]

    _, invoice = _started(plan)
    payment_record_manual(customer=invoice.customer, amount=900, method=PaymentMethod.CASH, invoice=invoice,
                          actor=ACTOR)
    few = costs()
    for _ in range(6):
        _, invoice = _started(PlanFactory(amount=900, trial_days=0))
        payment_record_manual(customer=invoice.customer, amount=900, method=PaymentMethod.CASH, invoice=invoice,
                              actor=ACTOR)
    # Rollup + partial days; by plan one more for the plans' codes; whole days only: the rollup alone.
    assert few == costs() == [2, 2, 3, 2, 1]


@pytest.mark.django_db
def test_verify_finds_a_corrupted_money_rollup_and_rebuild_only_money_repairs_it(capsys):
    _, invoice = _started(PlanFactory(amount=1200, trial_days=0))
    payment_record_manual(customer=invoice.customer, amount=1200, method=PaymentMethod.CASH, invoice=invoice,
                          actor=ACTOR)
    PaymentDay.objects.filter(status=PaymentStatus.SUCCEEDED).update(amount=1)
    RevenueDay.objects.filter(invoices__gt=0).delete()
    mrr_rows = list(CustomerMrrMonth.objects.values_list("customer_id", "month", "mrr"))
    with pytest.raises(CommandError):
        call_command("billing", "verify")
    out = capsys.readouterr().out
    assert "money_payment_summary_day" in out and "money_revenue_day" in out
    CustomerMrrMonth.objects.all().delete()  # would be rebuilt by the mrr group, not by --only money
    call_command("billing", "rollups-rebuild", "--only", "money")
    assert money_rollup_mismatches() == []
    assert not CustomerMrrMonth.objects.exists()
    call_command("billing", "rollups-rebuild", "--only", "mrr")
    assert list(CustomerMrrMonth.objects.values_list("customer_id", "month", "mrr")) == mrr_rows
    assert MrrMonth.objects.exists()
    call_command("billing", "verify")


@pytest.mark.django_db(transaction=True)
def test_payments_and_a_plan_change_racing_leave_consistent_rollups():
    """Two payments on one day and rail share rollup rows; a plan change moves the history of the
    subscription one of them pays: it locks that history first, so neither counts it twice."""
    from billing_project.tests.threads import race

    now = timezone.now()
    basic, pro = PlanFactory(amount=2500, trial_days=0), PlanFactory(amount=4000, trial_days=0)
    moving, first = _started(basic)
    payment_record_manual(customer=moving.customer, amount=2500, method=PaymentMethod.CASH, invoice=first,
                          actor=ACTOR)
    [renewal] = invoices_issue(drafts=[_draft(moving, now, 2500)], actor=ACTOR, now=now)
    other_sub, other = _started(basic)

    def pay(subscription, invoice_id):
        def target():
            payment_record_manual(customer=subscription.customer, amount=2500, method=PaymentMethod.CASH,
                                  invoice=Invoice.objects.get(pk=invoice_id), actor=ACTOR)
        return target

    def upgrade():
        subscription_change_plan(subscription=moving, new_plan=pro, actor=ACTOR)

    outcome = race([pay(moving, renewal.pk), pay(other_sub, other.pk), upgrade], join_timeout=90)
    assert outcome.errors == []
    assert_reports_match_their_definitions(now)
    assert RevenueDay.objects.filter(plan_id=pro.pk, collected__gt=0).exists()
