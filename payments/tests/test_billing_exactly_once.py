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
    real_issue = renewals.invoices_issue
    calls = []

    def failing_third_batch(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real_issue(**kwargs)

    monkeypatch.setattr(renewals, "invoices_issue", failing_third_batch)
    with pytest.raises(RuntimeError):
        billing_run(as_of=FEB_28, batch_size=3)
    assert Invoice.objects.count() == 6  # two batches committed, the third rolled back whole
    assert Subscription.objects.filter(current_period_end=MAR_31).count() == 6
    assert CreditGrant.objects.count() == 6

    monkeypatch.setattr(renewals, "invoices_issue", real_issue)
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
    for _ in range(80):
        make_due_subscription()
    errors = race([lambda: billing_run(as_of=FEB_28, batch_size=7)] * 2).errors
    assert errors == []
    attempted = [invoice_id for invoice_id, _ in calls]
    assert len(attempted) == len(set(attempted)) == 80
    assert set(Invoice.objects.values_list("attempt_count", flat=True)) == {1}
    assert Subscription.objects.filter(status=SubscriptionStatus.PAST_DUE).count() == 80
    assert SubscriptionEvent.objects.filter(to_status=SubscriptionStatus.PAST_DUE).count() == 80
