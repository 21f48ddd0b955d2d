"""Step 4 of the run: collection and dunning.

Each open invoice whose `next_attempt_at` has come is charged through `payments.collection.invoice_collect`
(which carries the per-attempt idempotency key). This step owns the retry schedule: a failed attempt (or
no way to pay) counts one more attempt, moves the subscription to past_due and schedules the next try
`BILLING_DUNNING_RETRY_DAYS` after the first failure (1, 3, 5, 7 days by default, measured as the gaps
between those days from the previous attempt); the failure after the last retry marks the invoice
uncollectible and cancels the subscription. A "processing" charge is looked at again after the first
gap without counting as an attempt (the same idempotency key finds the same charge)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing_project.audit import Actor
from billing_project.bulk import array_of
from billing_project.exceptions import PaymentProviderUnavailable
from payments import collection
from payments.billing.common import StepCounts, batch_transaction_tune, rows_update
from payments.models import Invoice, InvoiceStatus
from payments.services import invoice_transition
from subscriptions.models import Subscription, SubscriptionEventKind, SubscriptionStatus
from subscriptions.services import EventSpec, subscription_events_write_many, subscription_transition

S = SubscriptionStatus


def invoices_due_for_collection(*, as_of: datetime):
    return Invoice.objects.filter(status=InvoiceStatus.OPEN, next_attempt_at__lte=as_of)


def retry_gap(*, failures: int) -> timedelta | None:
    """Time from the `failures`-th failed attempt to the next one; None once the retries are used up."""
    days = settings.BILLING_DUNNING_RETRY_DAYS
    if failures > len(days):
        return None
    previous = days[failures - 2] if failures >= 2 else 0
    return timedelta(days=days[failures - 1] - previous)


# What collecting reads of an invoice and its customer; any other field still loads on first access.
_COLLECTION_FIELDS = ("id", "number", "customer_id", "subscription_id", "status", "currency", "subtotal", "total",
                      "amount_paid", "amount_due", "attempt_count", "next_attempt_at", "metadata", "customer__name",
                      "customer__email", "customer__currency", "customer__stripe_customer_id",
                      "customer__stripe_default_payment_method_id")


def invoice_ids_due_for_collection(*, as_of: datetime) -> list[int]:
    """The step's work list, read once per run in primary-key order and cut into batches: each batch is
    then a primary-key lookup. (Claiming "the next 500 due" per batch lets PostgreSQL, whose statistics
    have not yet seen the invoices the renewals just wrote, scan and sort every due invoice each time.)
    Each invoice is attempted at most once per run, whatever its outcome."""
    return list(invoices_due_for_collection(as_of=as_of).order_by("pk").values_list("pk", flat=True))


def dunning_batch(*, as_of: datetime, invoice_ids: list[int], actor: Actor) -> StepCounts:
    """Collect these invoices, in their own transaction; the due condition is checked again under the
    lock, so an invoice another run has locked or already handled is skipped."""
    with transaction.atomic():
        batch_transaction_tune()
        invoices = list(
            invoices_due_for_collection(as_of=as_of).filter(pk__in=array_of(invoice_ids)).select_related("customer")
            .only(*_COLLECTION_FIELDS).select_for_update(skip_locked=True, of=("self",)).order_by("pk")
        )
        if not invoices:
            return StepCounts()
        return _collect(invoices=invoices, as_of=as_of, actor=actor)


def _collect(*, invoices: list[Invoice], as_of: datetime, actor: Actor) -> StepCounts:
    counts = StepCounts()
    rescheduled: dict[int, tuple[int, datetime | None]] = {}
    past_due: set[int] = set()
    exhausted: list[Invoice] = []
    for invoice in invoices:
        try:
            result = collection.invoice_collect(invoice=invoice, actor=actor, now=as_of)
        except PaymentProviderUnavailable:
            # The provider is down (or absent): nothing happened, so nothing counts; look again later.
            rescheduled[invoice.pk] = (invoice.attempt_count, as_of + retry_gap(failures=1))
            counts.add("collection_skipped")
            continue
        if result.outcome == collection.SUCCEEDED:
            counts.add("collected")
            continue
        if result.outcome == collection.PROCESSING:
            rescheduled[invoice.pk] = (invoice.attempt_count, as_of + retry_gap(failures=1))
            counts.add("processing")
            continue
        counts.add("failed")
        failures = invoice.attempt_count + 1
        gap = retry_gap(failures=failures)
        rescheduled[invoice.pk] = (failures, as_of + gap if gap else None)
        if gap is None:
            exhausted.append(invoice)
        elif invoice.subscription_id:
            past_due.add(invoice.subscription_id)
    rows_update(model=Invoice, ids=list(rescheduled),
                columns={"attempt_count": ("integer", [a for a, _ in rescheduled.values()]),
                         "next_attempt_at": ("timestamptz", [n for _, n in rescheduled.values()])},
                constants={"updated_at": timezone.now()})
    _mark_past_due(subscription_ids=past_due, actor=actor)
    for invoice in exhausted:
        invoice.attempt_count, invoice.next_attempt_at = rescheduled[invoice.pk]
        invoice_transition(invoice=invoice, to_status=InvoiceStatus.UNCOLLECTIBLE, actor=actor, now=as_of,
                           reason=f"collection failed {invoice.attempt_count} times")
        counts.add("uncollectible")
        if invoice.subscription_id:
            subscription = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
            if subscription.status != S.CANCELED:
                subscription_transition(subscription=subscription, to_status=S.CANCELED, actor=actor, now=as_of,
                                        reason=f"invoice {invoice.number} could not be collected")
                counts.add("canceled_unpaid")
    return counts


def _mark_past_due(*, subscription_ids: set[int], actor: Actor) -> None:
    """Active or trialing subscriptions with a failed payment become past_due (bulk, audited)."""
    if not subscription_ids:
        return
    locked = list(Subscription.objects.select_for_update()
                  .filter(pk__in=array_of(subscription_ids), status__in=[S.ACTIVE, S.TRIALING]).order_by("pk")
                  .values_list("pk", "status"))
    if not locked:
        return
    Subscription.objects.filter(pk__in=array_of(pk for pk, _ in locked)).update(status=S.PAST_DUE,
                                                                                updated_at=timezone.now())
    subscription_events_write_many(actor=actor, events=[
        EventSpec(subscription_id=pk, kind=SubscriptionEventKind.STATUS_CHANGED, from_status=status,
                  to_status=S.PAST_DUE, reason="payment failed") for pk, status in locked])
