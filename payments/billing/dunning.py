"""Step 4 of the run: collection and dunning.

Each open invoice whose `next_attempt_at` has come is charged through `payments.collection.invoice_collect`
(which carries the per-attempt idempotency key). This step owns the retry schedule: a failed attempt (or
no way to pay) counts one more attempt, moves the subscription to past_due and schedules the next try
`BILLING_DUNNING_RETRY_DAYS` after the first failure (1, 3, 5, 7 days by default, measured as the gaps
between those days from the previous attempt); the failure after the last retry marks the invoice
uncollectible and cancels the subscription. A "processing" charge is looked at again after the first
gap without counting as an attempt (the same idempotency key finds the same charge).

An invoice whose customer has nothing saved at any rail has its first attempt recorded by the renewal
batch that issues it (`first_attempt_failed_at_issue`, `FirstAttemptsFailed`): the same schedule, past
due move and email, without this step claiming it.

Invoices that would be charged are leased in the batch transaction and charged after it commits, each
outcome recorded in a short transaction of its own, so no row lock is held across a call to Stripe
(docs/billing.md, step 4)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from core.bulk import array_of, rows_update
from core.exceptions import PaymentProviderUnavailable
from core.jobs import job_defer, jobs_defer_many
from payments import collection
from payments.billing.common import StepCounts, batch_transaction_tune
from payments.billing.invoicing import FirstAttempt, InvoiceDraft, IssuedInvoice
from payments.emails import DUNNING_FINAL_NOTICE_TASK, PAYMENTS_FAILED_TASK
from payments.models import Invoice, InvoiceStatus
from payments.selectors.provider_accounts import HAS_SAVED_METHOD, saved_payment_method_exists
from payments.services import invoice_transition
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.services import StatusMove, subscription_transition, subscription_transition_many

S = SubscriptionStatus


def invoices_due_for_collection(*, as_of: datetime):
    # An invoice of a subscription a merchant of record bills is its to collect, never ours to charge or
    # dun (its rail issues it with no attempt scheduled as well; this holds if staff set one).
    billed_elsewhere = Subscription.objects.exclude(billed_by="").values("pk")
    return (Invoice.objects.filter(status=InvoiceStatus.OPEN, next_attempt_at__lte=as_of)
            .exclude(subscription_id__in=billed_elsewhere))


def retry_gap(*, failures: int) -> timedelta | None:
    """Time from the `failures`-th failed attempt to the next one; None once the retries are used up."""
    days = settings.BILLING_DUNNING_RETRY_DAYS
    if failures > len(days):
        return None
    previous = days[failures - 2] if failures >= 2 else 0
    return timedelta(days=days[failures - 1] - previous)


def first_attempt_failed_at_issue(*, as_of: datetime) -> FirstAttempt | None:
    """The schedule an invoice issued at `as_of` to a customer with no saved payment method at any rail
    starts with: its first attempt, due at issue, could only answer no_payment_method (invoice_collect
    calls no provider for it), so the batch that issues it records that failure as `_Outcomes.note` would
    (attempt 1, the next one after the first gap). None when no retry follows a first failure: the
    collection step then writes the invoice off and cancels, as for every exhausted invoice."""
    gap = retry_gap(failures=1)
    return None if gap is None else FirstAttempt(attempt_count=1, next_attempt_at=as_of + gap)


@dataclass(frozen=True)
class FirstAttemptsFailed:
    """The invoices of a renewal batch issued with their first attempt failed: as after any failed attempt
    that will be retried, the subscription becomes past due and the customer is told why and when."""

    invoice_ids: list[int]
    subscription_ids: list[int]

    @classmethod
    def of(cls, *, invoices: list[IssuedInvoice], drafts: dict[int, InvoiceDraft]) -> "FirstAttemptsFailed":
        """`drafts` by subscription id, as issued; an invoice with nothing due settled at issue instead."""
        failed = [invoice for invoice in invoices if invoice.status == InvoiceStatus.OPEN
                  and drafts[invoice.subscription_id].first_attempt is not None]
        return cls(invoice_ids=[invoice.pk for invoice in failed],
                   subscription_ids=[invoice.subscription_id for invoice in failed])

    def past_due_moves(self) -> list[StatusMove]:
        return [StatusMove(subscription_id=pk, to_status=S.PAST_DUE, reason=PAYMENT_FAILED_REASON)
                for pk in sorted(self.subscription_ids)]

    def notify(self) -> None:
        if self.invoice_ids:
            job_defer(name=PAYMENTS_FAILED_TASK, failures=[[pk, 1] for pk in self.invoice_ids])


# Why a subscription became past due (its audit row), whichever path recorded the failure.
PAYMENT_FAILED_REASON = "payment failed"

# What collecting reads of an invoice and its customer; any other field still loads on first access.
_COLLECTION_FIELDS = ("id", "number", "customer_id", "subscription_id", "status", "currency", "subtotal", "total",
                      "amount_paid", "amount_due", "attempt_count", "next_attempt_at", "metadata", "customer__name",
                      "customer__email", "customer__currency")


def invoice_ids_due_for_collection(*, as_of: datetime) -> list[int]:
    """The step's work list, read once per run in primary-key order and cut into batches: each batch is
    then a primary-key lookup. (Claiming "the next 500 due" per batch lets PostgreSQL, whose statistics
    have not yet seen the invoices the renewals just wrote, scan and sort every due invoice each time.)
    Each invoice is attempted at most once per run, whatever its outcome."""
    return list(invoices_due_for_collection(as_of=as_of).order_by("pk").values_list("pk", flat=True))


def dunning_batch(*, as_of: datetime, invoice_ids: list[int], actor: Actor, charge_cards: bool = True) -> StepCounts:
    """Collect these invoices. One transaction locks them (the due condition is checked again under the
    lock, so an invoice another run has locked or already handled is skipped), settles every invoice
    that cannot be charged (no configured rail or no saved payment method) and leases the ones that can;
    after it commits, each leased invoice is charged outside any transaction and its outcome recorded in
    a short transaction of its own. Row locks are never held across a provider call, and the Payment row
    invoice_collect commits before the call is there for the webhook that may beat our answer.

    With `charge_cards` off (a dry run) the invoices that would be charged are only counted: a card
    charge cannot be rolled back with the dry run's transaction."""
    lease_until = as_of + timedelta(seconds=settings.BILLING_COLLECTION_LEASE_SECONDS)
    with transaction.atomic():
        batch_transaction_tune()
        invoices = list(
            invoices_due_for_collection(as_of=as_of).filter(pk__in=array_of(invoice_ids)).select_related("customer")
            .only(*_COLLECTION_FIELDS)
            # Customers with nothing saved anywhere are settled without a query each (collection).
            .annotate(**{HAS_SAVED_METHOD: saved_payment_method_exists()})
            .select_for_update(skip_locked=True, of=("self",)).order_by("pk")
        )
        if not invoices:
            return StepCounts()
        chargeable, batched = [], []
        for invoice in invoices:
            (chargeable if collection.invoice_chargeable(invoice=invoice) else batched).append(invoice)
        counts = _collect(invoices=batched, as_of=as_of, actor=actor)
        if not charge_cards:
            if chargeable:
                counts.add("to_charge", len(chargeable))
            return counts
        claims = _claims_lease(invoices=chargeable, lease_until=lease_until)
    for claim in claims:
        _charge(claim=claim, as_of=as_of, actor=actor, counts=counts)
    return counts


@dataclass(frozen=True)
class _Claim:
    """What the claiming transaction saw: the charge and its record go ahead only while the invoice still
    shows exactly this (a later run that took it over after the lease wrote its own lease; a webhook or
    staff payment moved it out of open)."""

    invoice_id: int
    attempt_count: int
    lease_until: datetime


def _claims_lease(*, invoices: list[Invoice], lease_until: datetime) -> list[_Claim]:
    """Push the chargeable invoices' next_attempt_at to the end of the lease (one statement), so no other
    run finds them due while this one charges them outside its transaction. A run killed before it
    records an outcome leaves the lease behind; the first run after it retries the same attempt."""
    if not invoices:
        return []
    Invoice.objects.filter(pk__in=array_of(invoice.pk for invoice in invoices)).update(
        next_attempt_at=lease_until, updated_at=timezone.now())
    return [_Claim(invoice_id=invoice.pk, attempt_count=invoice.attempt_count, lease_until=lease_until)
            for invoice in invoices]


def _claimed(*, claim: _Claim):
    return Invoice.objects.filter(pk=claim.invoice_id, status=InvoiceStatus.OPEN, attempt_count=claim.attempt_count,
                                  next_attempt_at=claim.lease_until).select_related("customer").only(*_COLLECTION_FIELDS)


def _charge(*, claim: _Claim, as_of: datetime, actor: Actor, counts: StepCounts) -> None:
    """Charge one leased invoice (outside any transaction: invoice_collect commits its Payment row, calls
    Stripe, then commits what Stripe said), then record the outcome under the invoice's lock."""
    # Read again without a lock: paid or voided since the claim (a webhook, staff) means no charge at all.
    invoice = _claimed(claim=claim).first()
    if invoice is None:
        counts.add("collection_skipped")
        return
    try:
        result = collection.invoice_collect(invoice=invoice, actor=actor, now=as_of)
    except PaymentProviderUnavailable:
        result = None
    if result is not None and result.outcome == collection.SUCCEEDED:
        # The gateway (or the webhook that beat it) has paid the invoice: nothing is left to schedule.
        counts.add("collected")
        return
    with transaction.atomic():
        invoice = _claimed(claim=claim).select_for_update(of=("self",)).first()
        if invoice is None:
            # Settled while Stripe was answering (a webhook, a staff payment) or taken over by a later run:
            # this attempt is not ours to count.
            counts.add("collection_skipped")
            return
        outcomes = _Outcomes(counts=counts)
        if result is None:
            outcomes.provider_unavailable(invoice=invoice, as_of=as_of)
        else:
            outcomes.note(invoice=invoice, result=result, as_of=as_of)
        outcomes.write(as_of=as_of, actor=actor)


@dataclass
class _Outcomes:
    """The schedule changes a set of collection results calls for, written together (one statement per
    kind of change, whatever the number of invoices)."""

    counts: StepCounts
    rescheduled: dict[int, tuple[int, datetime | None]] = field(default_factory=dict)
    past_due: set[int] = field(default_factory=set)
    exhausted: list[Invoice] = field(default_factory=list)
    # (invoice id, failed attempt number) of failures that will be retried: each customer is told why and when.
    retried_failures: list[tuple[int, int]] = field(default_factory=list)

    def provider_unavailable(self, *, invoice: Invoice, as_of: datetime) -> None:
        # The provider is down (or absent): nothing happened, so nothing counts; look again later.
        self.rescheduled[invoice.pk] = (invoice.attempt_count, as_of + retry_gap(failures=1))
        self.counts.add("collection_skipped")

    def note(self, *, invoice: Invoice, result: collection.CollectionResult, as_of: datetime) -> None:
        if result.outcome == collection.SUCCEEDED:
            self.counts.add("collected")
            return
        if result.outcome == collection.PROCESSING:
            self.rescheduled[invoice.pk] = (invoice.attempt_count, as_of + retry_gap(failures=1))
            self.counts.add("processing")
            return
        self.counts.add("failed")
        failures = invoice.attempt_count + 1
        gap = retry_gap(failures=failures)
        self.rescheduled[invoice.pk] = (failures, as_of + gap if gap else None)
        if gap is None:
            self.exhausted.append(invoice)
            return
        self.retried_failures.append((invoice.pk, failures))
        if invoice.subscription_id:
            self.past_due.add(invoice.subscription_id)

    def write(self, *, as_of: datetime, actor: Actor) -> None:
        rescheduled = self.rescheduled
        rows_update(model=Invoice, ids=list(rescheduled),
                    columns={"attempt_count": ("integer", [a for a, _ in rescheduled.values()]),
                             "next_attempt_at": ("timestamptz", [n for _, n in rescheduled.values()])},
                    constants={"updated_at": timezone.now()})
        _mark_past_due(subscription_ids=self.past_due, actor=actor)
        if self.retried_failures:
            job_defer(name=PAYMENTS_FAILED_TASK, failures=[[pk, attempt] for pk, attempt in self.retried_failures])
        jobs_defer_many(name=DUNNING_FINAL_NOTICE_TASK, kwargs_list=[{"invoice_id": i.pk} for i in self.exhausted])
        for invoice in self.exhausted:
            invoice.attempt_count, invoice.next_attempt_at = rescheduled[invoice.pk]
            invoice_transition(invoice=invoice, to_status=InvoiceStatus.UNCOLLECTIBLE, actor=actor, now=as_of,
                               reason=f"collection failed {invoice.attempt_count} times")
            self.counts.add("uncollectible")
            if invoice.subscription_id:
                subscription = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
                if subscription.status != S.CANCELED:
                    subscription_transition(subscription=subscription, to_status=S.CANCELED, actor=actor,
                                            now=as_of, reason=f"invoice {invoice.number} could not be collected")
                    self.counts.add("canceled_unpaid")


def _collect(*, invoices: list[Invoice], as_of: datetime, actor: Actor) -> StepCounts:
    """The batched path, inside the batch transaction: invoices invoice_collect answers without calling
    Stripe (no_payment_method), so a batch of them costs a constant number of statements."""
    outcomes = _Outcomes(counts=StepCounts())
    for invoice in invoices:
        try:
            result = collection.invoice_collect(invoice=invoice, actor=actor, now=as_of)
        except PaymentProviderUnavailable:
            outcomes.provider_unavailable(invoice=invoice, as_of=as_of)
            continue
        outcomes.note(invoice=invoice, result=result, as_of=as_of)
    outcomes.write(as_of=as_of, actor=actor)
    return outcomes.counts


def _mark_past_due(*, subscription_ids: set[int], actor: Actor) -> None:
    """Active or trialing subscriptions with a failed payment become past_due (bulk, audited); the bulk
    transition leaves the others (already past due, canceled...) as they are."""
    subscription_transition_many(actor=actor, moves=[
        StatusMove(subscription_id=pk, to_status=S.PAST_DUE, reason=PAYMENT_FAILED_REASON)
        for pk in sorted(subscription_ids)])
