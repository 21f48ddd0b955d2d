from datetime import UTC, datetime, timedelta

import pytest

from core.exceptions import PaymentProviderUnavailable
from payments import collection
from payments.billing.dunning import retry_gap
from payments.billing.run import billing_run
from payments.models import Invoice, InvoiceStatus, Payment
from payments.tests.conftest import make_due_subscription
from payments.tests.factories import StripeCustomerFactory
from subscriptions.models import SubscriptionStatus

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


# A saved card (Stripe itself not configured): the scripted gateway (collect_outcomes) is asked for the first
# attempt too. A customer with nothing saved has that attempt recorded as failed when the invoice is issued.
CARD = {"stripe_default_payment_method_id": "pm_card_visa"}


def _renewed_invoice(**customer_fields):
    sub = make_due_subscription(customer=StripeCustomerFactory(user=None, **customer_fields))
    billing_run(as_of=FEB_28)
    return sub, Invoice.objects.get(subscription=sub)


def test_retry_gaps_follow_the_days_after_the_first_failure(settings):
    settings.BILLING_DUNNING_RETRY_DAYS = [1, 3, 5, 7]
    assert [retry_gap(failures=n) for n in range(1, 6)] == [timedelta(days=1), timedelta(days=2),
                                                            timedelta(days=2), timedelta(days=2), None]


def test_failed_collection_follows_the_schedule_then_cancels_and_writes_off(settings, collect_outcomes):
    settings.BILLING_DUNNING_RETRY_DAYS = [1, 3, 5, 7]
    script, calls = collect_outcomes
    script["outcome"] = "failed"
    sub, invoice = _renewed_invoice(**CARD)
    first_failure = FEB_28
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.attempt_count == 1 and sub.status == SubscriptionStatus.PAST_DUE
    for attempt, day in enumerate([1, 3, 5], start=2):
        assert invoice.next_attempt_at == first_failure + timedelta(days=day)
        billing_run(as_of=invoice.next_attempt_at - timedelta(seconds=1))  # not due yet: untouched
        assert Invoice.objects.get(pk=invoice.pk).attempt_count == attempt - 1
        billing_run(as_of=invoice.next_attempt_at)
        invoice.refresh_from_db()
        assert invoice.attempt_count == attempt and invoice.status == InvoiceStatus.OPEN
    assert invoice.next_attempt_at == first_failure + timedelta(days=7)
    summary = billing_run(as_of=invoice.next_attempt_at)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE and invoice.attempt_count == 5
    assert invoice.next_attempt_at is None
    assert sub.status == SubscriptionStatus.CANCELED
    assert summary.counts["uncollectible"] == summary.counts["canceled_unpaid"] == 1
    assert [attempts for _, attempts in calls] == [0, 1, 2, 3, 4]  # the idempotency key's attempt numbers


def test_success_on_a_retry_pays_the_invoice_and_reactivates(collect_outcomes):
    script, _ = collect_outcomes
    script["outcome"] = "failed"
    sub, invoice = _renewed_invoice(**CARD)
    script["outcome"] = "succeeded"
    invoice.refresh_from_db()
    summary = billing_run(as_of=invoice.next_attempt_at)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert summary.counts["collected"] == 1
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_due == 0 and invoice.next_attempt_at is None
    assert sub.status == SubscriptionStatus.ACTIVE


def test_processing_charge_is_looked_at_again_without_counting_an_attempt(collect_outcomes):
    _, calls = collect_outcomes
    sub, invoice = _renewed_invoice(**CARD)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.attempt_count == 0 and invoice.next_attempt_at == FEB_28 + timedelta(days=1)
    assert sub.status == SubscriptionStatus.ACTIVE and len(calls) == 1


def test_real_collection_without_a_payment_method_fails_without_a_payment_row(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_configured"
    sub, invoice = _renewed_invoice(stripe_default_payment_method_id="")
    result = collection.invoice_collect(invoice=invoice, actor=None, now=FEB_28)
    assert result.outcome == "no_payment_method" and result.payment is None
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.attempt_count == 1 and sub.status == SubscriptionStatus.PAST_DUE
    assert not Payment.objects.exists()


def test_no_stripe_key_means_no_payment_method_even_with_a_saved_card(settings):
    settings.STRIPE_SECRET_KEY = ""
    _, invoice = _renewed_invoice(stripe_default_payment_method_id="pm_card_visa")
    result = collection.invoice_collect(invoice=invoice, actor=None, now=FEB_28)
    assert result.outcome == "no_payment_method"


def test_collection_never_touches_the_schedule_itself(settings):
    settings.STRIPE_SECRET_KEY = ""
    _, invoice = _renewed_invoice()
    before = Invoice.objects.values("attempt_count", "next_attempt_at").get(pk=invoice.pk)
    collection.invoice_collect(invoice=invoice, actor=None, now=FEB_28 + timedelta(days=1))
    assert Invoice.objects.values("attempt_count", "next_attempt_at").get(pk=invoice.pk) == before


def test_provider_unavailable_skips_without_counting_an_attempt(monkeypatch):
    def unavailable(*, invoice, actor, now):
        raise PaymentProviderUnavailable("Stripe is not configured.")

    monkeypatch.setattr(collection, "invoice_collect", unavailable)
    sub, invoice = _renewed_invoice(stripe_customer_id="cus_x", stripe_default_payment_method_id="pm_card_visa")
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.attempt_count == 0 and sub.status == SubscriptionStatus.ACTIVE
    assert invoice.next_attempt_at == FEB_28 + timedelta(days=1)


def test_dunning_batch_query_count_does_not_grow_with_batch_size(collect_outcomes):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from payments.billing.common import RUN_ACTOR
    from payments.billing.dunning import dunning_batch, invoice_ids_due_for_collection

    script, _ = collect_outcomes
    script["outcome"] = "failed"
    queries = {}
    for size, offset in ((2, 0), (30, 1)):
        subs = [make_due_subscription(anchor=datetime(2026, 1, 31, 12, offset, tzinfo=UTC)) for _ in range(size)]
        as_of = subs[0].current_period_end
        billing_run(as_of=as_of, limit=size)  # renew (first failure, attempt 1)
        with CaptureQueriesContext(connection) as context:
            ids = invoice_ids_due_for_collection(as_of=as_of + timedelta(days=1))
            counts = dunning_batch(as_of=as_of + timedelta(days=1), invoice_ids=ids, actor=RUN_ACTOR)
        assert counts.counts["failed"] == size
        queries[size] = len(context)
    assert queries[2] == queries[30] <= 10


def test_an_invoice_nobody_can_pay_has_its_first_attempt_recorded_as_it_is_issued(settings, collect_outcomes):
    from core.tests.jobs_support import jobs_queued
    from payments.emails import PAYMENTS_FAILED_TASK
    from subscriptions.models import SubscriptionEvent

    settings.BILLING_DUNNING_RETRY_DAYS = [2, 5]
    script, calls = collect_outcomes
    script["outcome"] = "succeeded"
    sub, invoice = _renewed_invoice()  # nothing saved at any rail

    summary_failed = Invoice.objects.filter(pk=invoice.pk, attempt_count=1, status=InvoiceStatus.OPEN,
                                            next_attempt_at=FEB_28 + timedelta(days=2)).exists()
    sub.refresh_from_db()
    assert summary_failed and invoice.number == "INV-2026-000001"
    assert calls == []  # no gateway was asked: invoice_collect could only answer no_payment_method
    assert sub.status == SubscriptionStatus.PAST_DUE
    assert list(SubscriptionEvent.objects.filter(subscription=sub, to_status=SubscriptionStatus.PAST_DUE)
                .values_list("from_status", "reason")) == [("active", "payment failed")]
    assert [job.args for job in jobs_queued(task_name=PAYMENTS_FAILED_TASK)] == [{"failures": [[invoice.pk, 1]]}]
    # The schedule goes on from there: the second attempt is the gateway's, with the second idempotency key.
    summary = billing_run(as_of=FEB_28 + timedelta(days=2))
    assert calls == [(invoice.pk, 1)] and summary.counts["collected"] == 1


def test_a_run_counts_the_first_attempts_it_recorded_at_issue(collect_outcomes):
    script, calls = collect_outcomes
    script["outcome"] = "processing"
    unpaid = [make_due_subscription() for _ in range(3)]
    carded = make_due_subscription(customer=StripeCustomerFactory(user=None, **CARD))

    summary = billing_run(as_of=FEB_28)

    assert summary.counts["failed"] == 3 and summary.counts["processing"] == 1
    assert [pk for pk, _ in calls] == [Invoice.objects.get(subscription=carded).pk]
    assert set(Invoice.objects.filter(subscription__in=unpaid).values_list("attempt_count", flat=True)) == {1}


def test_without_retries_a_first_failure_at_issue_is_left_to_the_step_that_writes_it_off(settings):
    settings.BILLING_DUNNING_RETRY_DAYS = []
    sub, invoice = _renewed_invoice()
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE and invoice.attempt_count == 1
    assert sub.status == SubscriptionStatus.CANCELED

