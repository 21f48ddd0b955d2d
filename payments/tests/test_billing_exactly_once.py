"""Exactly once on PostgreSQL: repeated runs, concurrent runs (threads with their own connections),
and a run killed mid-way (a real process, SIGKILL) or failing mid-way, then resumed."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db.models import Count

from billing_project.tests.server_support import database_url_of_the_tests
from billing_project.tests.threads import race
from credits.models import CreditGrant
from payments.billing import renewals
from payments.billing.run import billing_run
from payments.models import Invoice
from payments.tests.conftest import make_due_subscription
from payments.tests.factories import StripeCustomerFactory
from subscriptions.models import Subscription
from subscriptions.tests.factories import PlanFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
MAR_31 = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _assert_each_period_billed_once(count: int) -> None:
    assert not Subscription.objects.filter(current_period_end__lte=FEB_28).exists()
    assert Subscription.objects.filter(current_period_end=MAR_31).count() == count
    per_period = Invoice.objects.values("subscription_id", "period_start").annotate(n=Count("id"))
    assert len(per_period) == count and {row["n"] for row in per_period} == {1}
    assert CreditGrant.objects.count() == count
    numbers = sorted(int(n.rsplit("-", 1)[1]) for n in Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(1, count + 1))  # gapless, even when runs race


@pytest.mark.django_db
def test_running_twice_bills_nothing_twice():
    plan = PlanFactory(credits_per_period=10)
    for _ in range(7):
        make_due_subscription(plan=plan)
    first = billing_run(as_of=FEB_28, batch_size=3)
    second = billing_run(as_of=FEB_28, batch_size=3)
    assert first.counts["renewed"] == first.counts["invoiced"] == 7
    assert second.counts.get("renewed", 0) == second.counts.get("invoiced", 0) == 0
    _assert_each_period_billed_once(7)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_share_the_work_and_never_double_bill():
    plan = PlanFactory(credits_per_period=10)
    for _ in range(120):
        make_due_subscription(plan=plan)
    outcome = race([lambda: billing_run(as_of=FEB_28, batch_size=4)] * 2)
    results, errors = outcome.results, outcome.errors
    assert errors == []
    assert sum(r.counts.get("renewed", 0) for r in results) == 120
    assert sum(r.counts.get("invoiced", 0) for r in results) == 120
    assert all(r.counts.get("renewed", 0) > 0 for r in results)  # SKIP LOCKED split the batches
    _assert_each_period_billed_once(120)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_killed_mid_way_is_completed_by_the_next_run_without_duplicates():
    plan = PlanFactory(credits_per_period=10)
    total = 400
    for _ in range(total):
        make_due_subscription(plan=plan)
    env = {**os.environ, "DATABASE_URL": database_url_of_the_tests(), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "billing", "run", "--as-of", FEB_28.isoformat(), "--batch-size", "1",
         "--no-progress"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while Invoice.objects.count() < 5 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    done_before = Invoice.objects.count()
    assert 5 <= done_before < total  # killed mid-way: some batches committed, the rest not started

    resumed = billing_run(as_of=FEB_28, batch_size=50)

    assert resumed.counts["renewed"] == total - done_before
    _assert_each_period_billed_once(total)


@pytest.mark.django_db(transaction=True)
def test_run_failing_mid_way_keeps_committed_batches_and_the_rerun_completes(monkeypatch):
    plan = PlanFactory(credits_per_period=10)
    for _ in range(10):
        make_due_subscription(plan=plan)
    real_moves = renewals.subscription_periods_move_many
    calls = []

    def failing_third_batch(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real_moves(**kwargs)

    # Fails after the batch wrote its invoices, before it numbers them.
    monkeypatch.setattr(renewals, "subscription_periods_move_many", failing_third_batch)
    with pytest.raises(RuntimeError):
        billing_run(as_of=FEB_28, batch_size=3)
    assert Invoice.objects.count() == 6  # two batches committed, the third rolled back whole
    assert Subscription.objects.filter(current_period_end=MAR_31).count() == 6
    assert CreditGrant.objects.count() == 6

    monkeypatch.setattr(renewals, "subscription_periods_move_many", real_moves)
    assert billing_run(as_of=FEB_28, batch_size=3).counts["renewed"] == 4
    _assert_each_period_billed_once(10)


@pytest.mark.django_db
def test_a_second_invoice_for_a_period_is_refused_by_the_database():
    from django.db import IntegrityError

    from payments.billing.invoicing import InvoiceDraft, invoices_issue
    from payments.models import BillingReason

    sub = make_due_subscription()
    billing_run(as_of=FEB_28)
    draft = InvoiceDraft(customer_id=sub.customer_id, currency="USD", subscription_id=sub.pk,
                         billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=FEB_28, period_end=MAR_31,
                         lines=[])
    from core.audit import Actor
    with pytest.raises(IntegrityError):
        invoices_issue(drafts=[draft], actor=Actor.system("test"), now=FEB_28)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_attempt_each_invoice_once(collect_outcomes):
    from subscriptions.models import SubscriptionEvent, SubscriptionStatus

    script, calls = collect_outcomes
    script["outcome"] = "failed"
    for _ in range(80):  # with a saved card, so the scripted gateway is asked (Stripe itself not configured)
        make_due_subscription(customer=StripeCustomerFactory(user=None, stripe_default_payment_method_id="pm_card"))
    errors = race([lambda: billing_run(as_of=FEB_28, batch_size=7)] * 2).errors
    assert errors == []
    attempted = [invoice_id for invoice_id, _ in calls]
    assert len(attempted) == len(set(attempted)) == 80
    assert set(Invoice.objects.values_list("attempt_count", flat=True)) == {1}
    assert Subscription.objects.filter(status=SubscriptionStatus.PAST_DUE).count() == 80
    assert SubscriptionEvent.objects.filter(to_status=SubscriptionStatus.PAST_DUE).count() == 80


@pytest.mark.django_db(transaction=True)
def test_a_batch_failing_after_taking_its_numbers_gives_them_back(monkeypatch):
    from payments.billing import invoicing
    from payments.models import InvoiceNumberSequence

    plan = PlanFactory(credits_per_period=10)
    for _ in range(9):
        make_due_subscription(plan=plan)
    real_emit = invoicing.invoices_issued_webhook_emit
    calls = []

    def failing_second_batch(**kwargs):
        calls.append(1)
        if len(calls) == 2:  # the batch's invoices are numbered by now; its COMMIT has not run
            assert InvoiceNumberSequence.objects.get(year=FEB_28.year).last_number == 6
            raise RuntimeError("connection lost before COMMIT")
        return real_emit(**kwargs)

    monkeypatch.setattr(invoicing, "invoices_issued_webhook_emit", failing_second_batch)
    with pytest.raises(RuntimeError):
        billing_run(as_of=FEB_28, batch_size=3)
    assert InvoiceNumberSequence.objects.get(year=FEB_28.year).last_number == 3  # the three numbers came back
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [f"INV-2026-00000{n}" for n in (1, 2, 3)]

    monkeypatch.setattr(invoicing, "invoices_issued_webhook_emit", real_emit)
    assert billing_run(as_of=FEB_28, batch_size=3).counts["renewed"] == 6
    _assert_each_period_billed_once(9)


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_with_a_failing_batch_leave_no_gap(monkeypatch):
    plan = PlanFactory(credits_per_period=10)
    for _ in range(60):
        make_due_subscription(plan=plan)
    real_moves = renewals.subscription_periods_move_many
    calls = []

    def one_batch_fails(**kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("one batch of one run fails")
        return real_moves(**kwargs)

    monkeypatch.setattr(renewals, "subscription_periods_move_many", one_batch_fails)
    outcome = race([lambda: billing_run(as_of=FEB_28, batch_size=4)] * 2)
    assert len(outcome.errors) == 1  # that run stopped; the other went on through every batch it could claim
    monkeypatch.setattr(renewals, "subscription_periods_move_many", real_moves)
    billing_run(as_of=FEB_28, batch_size=4)
    _assert_each_period_billed_once(60)


@pytest.mark.django_db(transaction=True)
def test_the_number_counter_is_free_while_a_batch_writes_and_locked_only_at_its_end(monkeypatch):
    """Another issuer takes a number while a batch is writing (it would wait for the whole batch if the
    batch held the counter); the batch takes its numbers after its deferred checks, in its last two
    statements."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from billing_project.tests.threads import run_threads
    from payments.billing.common import RUN_ACTOR
    from payments.billing.lines import catalog_load
    from payments.services import invoice_numbers_take

    plan = PlanFactory(credits_per_period=10)
    for _ in range(5):
        make_due_subscription(plan=plan)
    real_moves = renewals.subscription_periods_move_many
    taken = []

    def take_a_number() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '5s'")
                taken.extend(invoice_numbers_take(year=FEB_28.year, count=1))
        finally:
            connection.close()

    def moves_while_another_issuer_numbers(**kwargs):
        [thread] = run_threads([take_a_number], join_timeout=30)
        assert not thread.is_alive()
        return real_moves(**kwargs)

    monkeypatch.setattr(renewals, "subscription_periods_move_many", moves_while_another_issuer_numbers)
    with CaptureQueriesContext(connection) as context:
        counts = renewals.renewal_batch(step=renewals.RENEWALS, as_of=FEB_28, batch_size=10, actor=RUN_ACTOR,
                                        catalog=catalog_load())

    assert counts.counts["invoiced"] == 5 and taken == ["INV-2026-000001"]
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-00000{n}" for n in range(2, 7)]
    statements = [q["sql"] for q in context.captured_queries
                  if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    counter = next(i for i, sql in enumerate(statements) if "invoicenumbersequence" in sql)
    assert statements[counter - 1] == "SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED"
    # After the counter: the numbering UPDATE of the batch's invoices, whether any webhook endpoint wants
    # invoice events (none here, so nothing is read back), and COMMIT.
    numbering, *reads, commit = statements[counter + 1:]
    assert numbering.startswith("UPDATE payments_invoice AS t SET number = v.number, status = v.status")
    assert all(sql.startswith("SELECT") and "outbound_webhooks_webhookendpoint" in sql for sql in reads)
    assert len(reads) <= 1 and commit == "COMMIT"
