"""Writes for invoices, payments and refunds, and the flows that span apps (starting a subscription,
changing its plan). Status moves go through `invoice_transition` and `payment_transition` only."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from billing_project.audit import Actor
from billing_project.exceptions import IdempotencyConflict, IllegalTransition, InvalidOperation
from billing_project.money import round_minor
from credits.models import CreditSource
from credits.services import credit_grant, credit_plan_refill
from payments import stripe_gateway
from payments.live import payment_broadcast
from payments.models import (
    MANUAL_PAYMENT_METHODS,
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceStatusChange,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentStatusChange,
    Refund,
    RefundStatus,
)
from subscriptions.models import Customer, Plan, Subscription, SubscriptionEventKind, SubscriptionStatus
from subscriptions.services import (
    subscription_create,
    subscription_event_write,
    subscription_lock,
    subscription_transition,
)

IS = InvoiceStatus
P = PaymentStatus

ALLOWED_INVOICE_TRANSITIONS: dict[str, set[str]] = {
    IS.DRAFT: {IS.OPEN, IS.VOID},
    IS.OPEN: {IS.PAID, IS.VOID, IS.UNCOLLECTIBLE},
    IS.UNCOLLECTIBLE: {IS.PAID, IS.VOID},
    IS.PAID: set(),
    IS.VOID: set(),
}

ALLOWED_PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    P.PENDING: {P.PROCESSING, P.SUCCEEDED, P.FAILED, P.CANCELED},
    P.PROCESSING: {P.SUCCEEDED, P.FAILED, P.CANCELED},
    # A failed PaymentIntent can be retried with another card and still succeed.
    P.FAILED: {P.PROCESSING, P.SUCCEEDED, P.CANCELED},
    P.SUCCEEDED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
    P.PARTIALLY_REFUNDED: {P.REFUNDED},
    P.REFUNDED: set(),
    P.CANCELED: set(),
}


@dataclass(frozen=True)
class LineSpec:
    kind: str
    description: str
    unit_amount: Decimal
    quantity: Decimal = Decimal(1)
    period_start: datetime | None = None
    period_end: datetime | None = None
    meter_id: int | None = None
    metadata: dict = field(default_factory=dict)


def invoice_line_amount(*, quantity: Decimal, unit_amount: Decimal) -> int:
    """The one place a line's amount is rounded: half-up to the minor unit."""
    return round_minor(Decimal(quantity) * Decimal(unit_amount))


# ---------------------------------------------------------------------------------------- invoices


def invoice_transition(*, invoice: Invoice, to_status: str, actor: Actor, reason: str = "",
                       now: datetime | None = None) -> Invoice:
    now = now or timezone.now()
    from_status = invoice.status
    if to_status not in ALLOWED_INVOICE_TRANSITIONS[from_status]:
        raise IllegalTransition(f"A {from_status} invoice cannot become {to_status}.",
                                extra={"from": from_status, "to": to_status})
    invoice.status = to_status
    fields = ["status", "updated_at"]
    if to_status == IS.PAID:
        invoice.paid_at = now
        invoice.next_attempt_at = None
        fields += ["paid_at", "next_attempt_at"]
    elif to_status in (IS.VOID, IS.UNCOLLECTIBLE):
        if to_status == IS.VOID:
            invoice.voided_at = now
            fields.append("voided_at")
        invoice.next_attempt_at = None
        fields.append("next_attempt_at")
    invoice.save(update_fields=fields)
    change = InvoiceStatusChange(invoice=invoice, from_status=from_status, to_status=to_status, reason=reason[:500])
    change.stamp(actor)
    change.save()
    return invoice


def invoice_lock(*, invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice_id)


def invoice_number_next(*, year: int) -> str:
    """Take the next gapless number of the year; must run inside the finalizing transaction."""
    InvoiceNumberSequence.objects.bulk_create([InvoiceNumberSequence(year=year)], ignore_conflicts=True)
    sequence = InvoiceNumberSequence.objects.select_for_update().get(year=year)
    sequence.last_number = F("last_number") + 1
    sequence.save(update_fields=["last_number"])
    sequence.refresh_from_db(fields=["last_number"])
    return f"INV-{year}-{sequence.last_number:06d}"


def invoice_totals_recompute(*, invoice: Invoice) -> Invoice:
    subtotal = invoice.lines.aggregate(total=Sum("amount"))["total"] or 0
    invoice.subtotal = subtotal
    # A credit larger than the charges does not make the customer owed cash on this invoice.
    invoice.total = max(subtotal, 0)
    invoice.amount_due = max(invoice.total - invoice.amount_paid, 0)
    invoice.save(update_fields=["subtotal", "total", "amount_due", "updated_at"])
    return invoice


@transaction.atomic
def invoice_create(*, customer: Customer, lines: list[LineSpec], subscription: Subscription | None = None,
                   billing_reason: str = BillingReason.MANUAL, period_start: datetime | None = None,
                   period_end: datetime | None = None, metadata: dict | None = None) -> Invoice:
    """A draft invoice with its lines and totals."""
    invoice = Invoice.objects.create(
        customer=customer, subscription=subscription, billing_reason=billing_reason, currency=customer.currency,
        period_start=period_start, period_end=period_end, metadata=metadata or {},
    )
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, kind=spec.kind, description=spec.description[:300], quantity=spec.quantity,
                    unit_amount=spec.unit_amount,
                    amount=invoice_line_amount(quantity=spec.quantity, unit_amount=spec.unit_amount),
                    period_start=spec.period_start, period_end=spec.period_end, meter_id=spec.meter_id,
                    metadata=spec.metadata)
        for spec in lines
    ])
    return invoice_totals_recompute(invoice=invoice)


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, actor: Actor, now: datetime | None = None) -> Invoice:
    """Draft -> open with the next gapless number; an invoice with nothing due is paid at once."""
    now = now or timezone.now()
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice = invoice_totals_recompute(invoice=invoice)
    invoice.number = invoice_number_next(year=now.year)
    invoice.issued_at = now
    invoice.due_date = now + timedelta(days=settings.INVOICE_DAYS_UNTIL_DUE)
    invoice.next_attempt_at = now if invoice.amount_due else None
    invoice.save(update_fields=["number", "issued_at", "due_date", "next_attempt_at", "updated_at"])
    invoice_transition(invoice=invoice, to_status=IS.OPEN, actor=actor, reason="finalized", now=now)
    if invoice.amount_due == 0:
        invoice_settle(invoice=invoice, actor=actor, reason="nothing due", now=now)
    return invoice


def invoice_settle(*, invoice: Invoice, actor: Actor, reason: str, now: datetime | None = None) -> Invoice:
    """Mark a locked invoice paid and let its subscription benefit from it."""
    invoice = invoice_transition(invoice=invoice, to_status=IS.PAID, actor=actor, reason=reason, now=now)
    # Another open invoice of the subscription (an unpaid renewal while a proration is paid) still
    # stands between it and active; written-off (uncollectible) invoices do not.
    still_owed = Invoice.objects.filter(subscription_id=invoice.subscription_id, status=IS.OPEN).exclude(pk=invoice.pk)
    if invoice.subscription_id and not still_owed.exists():
        subscription_activate_after_payment(subscription_id=invoice.subscription_id, actor=actor, now=now)
    if invoice.billing_reason == BillingReason.CREDIT_PACK:
        credit_pack_fulfill(invoice=invoice, actor=actor)
    return invoice


def credit_pack_fulfill(*, invoice: Invoice, actor: Actor) -> None:
    """Grant the credits a paid credit-pack invoice bought. Keyed by the invoice, so however the invoice
    came to be paid (Checkout, a webhook replay, staff) the credits are granted once."""
    credits = int(invoice.metadata.get("credits") or 0)
    if credits <= 0:
        return
    credit_grant(customer=invoice.customer, amount=credits, source=CreditSource.PURCHASE, actor=actor,
                 reason=f"credit pack {invoice.number}", idempotency_key=f"credit-pack-invoice-{invoice.pk}")


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, actor: Actor, reason: str = "", now: datetime | None = None) -> Invoice:
    """Staff say the invoice was paid outside the system (or written off as paid)."""
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice.amount_due = 0
    invoice.save(update_fields=["amount_due", "updated_at"])
    return invoice_settle(invoice=invoice, actor=actor, reason=reason or "marked paid by staff", now=now)


@transaction.atomic
def invoice_void(*, invoice: Invoice, actor: Actor, reason: str = "", now: datetime | None = None) -> Invoice:
    invoice = invoice_lock(invoice_id=invoice.pk)
    if invoice.amount_paid:
        raise IllegalTransition("An invoice with payments cannot be voided; refund the payments first.",
                                code="invoice_has_payments")
    return invoice_transition(invoice=invoice, to_status=IS.VOID, actor=actor, reason=reason or "voided", now=now)


def invoice_apply_payment(*, invoice_id: int, amount: int, actor: Actor, now: datetime | None = None) -> Invoice:
    invoice = invoice_lock(invoice_id=invoice_id)
    if invoice.status not in (IS.OPEN, IS.UNCOLLECTIBLE):
        # Money arrived for an invoice that is already settled: it stays recorded on the payment.
        return invoice
    invoice.amount_paid += amount
    invoice.amount_due = max(invoice.total - invoice.amount_paid, 0)
    invoice.save(update_fields=["amount_paid", "amount_due", "updated_at"])
    if invoice.amount_due == 0:
        invoice_settle(invoice=invoice, actor=actor, reason="paid in full", now=now)
    return invoice


# ---------------------------------------------------------------------------------------- payments


def payment_transition(*, payment: Payment, to_status: str, actor: Actor, reason: str = "",
                       provider_data: dict | None = None, now: datetime | None = None,
                       provider_created: datetime | None = None, failure_code: str = "",
                       failure_reason: str = "") -> Payment:
    """Move a locked payment to `to_status`, audit it, and settle its invoice when it succeeds.

    `provider_created` is when the provider's event or answer was produced: an update older than the
    newest one already applied is refused (a late webhook never overwrites newer state). A failure
    leaves the invoice open: the billing run's dunning decides when to try again.
    """
    now = now or timezone.now()
    from_status = payment.status
    if to_status not in ALLOWED_PAYMENT_TRANSITIONS[from_status]:
        raise IllegalTransition(f"A {from_status} payment cannot become {to_status}.",
                                extra={"from": from_status, "to": to_status})
    if provider_created is not None and payment.provider_updated_at is not None \
            and provider_created < payment.provider_updated_at:
        raise IllegalTransition(
            f"A provider update from {provider_created.isoformat()} is older than the one already applied "
            f"({payment.provider_updated_at.isoformat()}).", code="stale_provider_update",
            extra={"from": from_status, "to": to_status})
    payment.status = to_status
    fields = ["status", "updated_at"]
    if provider_created is not None:
        payment.provider_updated_at = provider_created
        fields.append("provider_updated_at")
    if to_status == P.SUCCEEDED:
        payment.succeeded_at = now
        payment.failure_code = payment.failure_reason = ""
        fields += ["succeeded_at", "failure_code", "failure_reason"]
    elif to_status == P.FAILED:
        payment.failure_code = failure_code[:100]
        payment.failure_reason = (failure_reason or reason)[:500]
        fields += ["failure_code", "failure_reason"]
    payment.save(update_fields=fields)
    change = PaymentStatusChange(payment=payment, from_status=from_status, to_status=to_status,
                                 reason=reason[:500], provider_data=provider_data or {})
    change.stamp(actor)
    change.save()
    transaction.on_commit(partial(payment_broadcast, payment_id=payment.pk, previous_status=from_status))
    if to_status == P.SUCCEEDED and payment.invoice_id:
        invoice_apply_payment(invoice_id=payment.invoice_id, amount=payment.amount, actor=actor, now=now)
    return payment


def payment_lock(*, payment_id: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


@transaction.atomic
def payment_record_manual(*, customer: Customer, amount: int, method: str, actor: Actor,
                          invoice: Invoice | None = None, reference: str = "", reason: str = "",
                          now: datetime | None = None) -> Payment:
    """Money received outside Stripe (cash, check, bank transfer): recorded as succeeded."""
    if method not in MANUAL_PAYMENT_METHODS:
        raise InvalidOperation(f"{method} is not a manual payment method.", code="invalid_method")
    if amount <= 0:
        raise InvalidOperation("A payment must be for a positive amount.", code="invalid_amount")
    if invoice is not None:
        if invoice.customer_id != customer.pk:
            raise InvalidOperation("The invoice belongs to another customer.", code="invoice_customer_mismatch")
        # Re-read under lock: with a stale copy (two staff recording the same cheque) the second payment
        # would be kept against an invoice that no longer counts it.
        invoice = invoice_lock(invoice_id=invoice.pk)
        if invoice.status not in (IS.OPEN, IS.UNCOLLECTIBLE):
            raise IllegalTransition(f"A {invoice.status} invoice takes no payment.", code="invoice_not_payable")
    payment = Payment.objects.create(customer=customer, invoice=invoice, amount=amount, currency=customer.currency,
                                     method=method, reference=reference[:255])
    return payment_transition(payment=payment, to_status=P.SUCCEEDED, actor=actor,
                              reason=reason or f"{method} received", now=now,
                              provider_data={"reference": reference} if reference else None)


def _refund_replay(*, existing: Refund, payment: Payment, amount: int | None) -> Refund:
    """The refund a repeated key already made, unless the key now asks for something else."""
    if existing.payment_id != payment.pk or (amount is not None and amount != existing.amount):
        raise IdempotencyConflict("This idempotency key was already used for another refund.",
                                  extra={"refund_id": existing.pk})
    return existing


@transaction.atomic
def payment_refund(*, payment: Payment, actor: Actor, amount: int | None = None, reason: str = "",
                   idempotency_key: str | None = None, now: datetime | None = None) -> Refund:
    """Refund all or part of a succeeded payment. Manual methods are refunded at once (the money goes
    back by hand); card payments go through the payment provider."""
    payment = payment_lock(payment_id=payment.pk)
    if idempotency_key:
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return _refund_replay(existing=existing, payment=payment, amount=amount)
    if payment.status not in (P.SUCCEEDED, P.PARTIALLY_REFUNDED):
        raise IllegalTransition(f"A {payment.status} payment cannot be refunded.", code="payment_not_refundable")
    amount = payment.refundable_amount if amount is None else amount
    if amount <= 0 or amount > payment.refundable_amount:
        raise InvalidOperation(f"Refund must be between 1 and {payment.refundable_amount}.", code="invalid_amount",
                               extra={"refundable": payment.refundable_amount})
    if payment.method == PaymentMethod.STRIPE:
        return _payment_refund_stripe(payment=payment, amount=amount, actor=actor, reason=reason,
                                      idempotency_key=idempotency_key, now=now)
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, reason=reason[:500],
                    idempotency_key=idempotency_key, status=RefundStatus.SUCCEEDED)
    refund.stamp(actor)
    try:
        with transaction.atomic():
            refund.save()
    except IntegrityError:
        return _refund_replay(existing=Refund.objects.get(idempotency_key=idempotency_key), payment=payment,
                              amount=amount)
    payment_refund_apply(payment=payment, amount=amount, actor=actor, reason=reason, now=now)
    return refund


# Stripe's refund statuses in ours; requires_action (some bank refunds) is still on its way.
STRIPE_REFUND_STATUS = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def _payment_refund_stripe(*, payment: Payment, amount: int, actor: Actor, reason: str,
                           idempotency_key: str | None, now: datetime | None) -> Refund:
    """Refund a card payment in Stripe while its row is locked, so a charge.refunded webhook for this
    very refund waits for us and then finds it by stripe_refund_id instead of counting it again."""
    if not payment.stripe_payment_intent_id:
        raise InvalidOperation("This card payment never reached Stripe; there is nothing to refund there.",
                               code="payment_not_in_stripe")
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, reason=reason[:500],
                    idempotency_key=idempotency_key, status=RefundStatus.PENDING)
    refund.stamp(actor)
    try:
        with transaction.atomic():
            refund.save()
    except IntegrityError:
        return Refund.objects.get(idempotency_key=idempotency_key)
    # The caller's key when there is one, so a retry after a crash between Stripe's answer and our
    # commit asks Stripe for the same refund instead of a second one.
    stripe_key = f"refund-{payment.pk}-{idempotency_key}" if idempotency_key else f"refund-{refund.pk}"
    result = stripe_gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id, amount=amount, idempotency_key=stripe_key,
        metadata={"refund_id": str(refund.pk), "payment_id": str(payment.pk)},
    )
    refund.stripe_refund_id = result.id
    refund.status = STRIPE_REFUND_STATUS.get(result.status, RefundStatus.PENDING)
    refund.save(update_fields=["stripe_refund_id", "status"])
    if refund.status == RefundStatus.SUCCEEDED:
        payment_refund_apply(payment=payment, amount=amount, actor=actor, reason=reason or "refunded in Stripe",
                             provider_data={"refund": result.id, "status": result.status}, now=now)
    return refund


def payment_refund_apply(*, payment: Payment, amount: int, actor: Actor, reason: str = "",
                         provider_data: dict | None = None, now: datetime | None = None) -> Payment:
    """Count a refund that has happened against its locked payment."""
    payment.amount_refunded += amount
    payment.save(update_fields=["amount_refunded", "updated_at"])
    to_status = P.REFUNDED if payment.amount_refunded >= payment.amount else P.PARTIALLY_REFUNDED
    if to_status != payment.status:
        payment_transition(payment=payment, to_status=to_status, actor=actor, reason=reason or "refunded",
                           provider_data=provider_data, now=now)
    else:  # a further partial refund: same status, new amount_refunded
        transaction.on_commit(partial(payment_broadcast, payment_id=payment.pk, previous_status=payment.status))
    return payment


# ---------------------------------------------------------------------------- subscription flows


def plan_period_line(*, plan: Plan, start: datetime, end: datetime) -> LineSpec:
    return LineSpec(kind=InvoiceLineKind.SUBSCRIPTION, description=f"{plan.name} ({start:%Y-%m-%d} - {end:%Y-%m-%d})",
                    unit_amount=Decimal(plan.amount), period_start=start, period_end=end,
                    metadata={"plan": plan.code})


def subscription_activate_after_payment(*, subscription_id: int, actor: Actor, now: datetime | None = None) -> None:
    subscription = subscription_lock(subscription_id=subscription_id)
    if subscription.status in (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.PAST_DUE):
        subscription_transition(subscription=subscription, to_status=SubscriptionStatus.ACTIVE, actor=actor,
                                reason="invoice paid", now=now)
        credit_plan_refill(subscription=subscription, actor=actor)


@transaction.atomic
def subscription_start(*, customer: Customer, plan: Plan, actor: Actor, now: datetime | None = None,
                       with_trial: bool = True) -> tuple[Subscription, Invoice | None]:
    """Subscribe a customer. A paid plan without a trial issues its first invoice at once; the
    subscription stays incomplete until that invoice is paid."""
    now = now or timezone.now()
    subscription = subscription_create(customer=customer, plan=plan, actor=actor, now=now, with_trial=with_trial)
    if subscription.status != SubscriptionStatus.INCOMPLETE:
        credit_plan_refill(subscription=subscription, actor=actor)
        return subscription, None
    invoice = invoice_create(
        customer=customer, subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_CREATE,
        period_start=subscription.current_period_start, period_end=subscription.current_period_end,
        lines=[plan_period_line(plan=plan, start=subscription.current_period_start,
                                end=subscription.current_period_end)],
    )
    invoice = invoice_finalize(invoice=invoice, actor=actor, now=now)
    subscription.refresh_from_db()
    return subscription, invoice


@dataclass(frozen=True)
class PlanChange:
    subscription: Subscription
    # "immediate" for upgrades (prorated now), "period_end" for downgrades (scheduled).
    effective: str
    effective_at: datetime
    invoice: Invoice | None
    proration_amount: int


# InvoiceLine.quantity has 6 decimal places; a prorated fraction is stored (and priced) at that precision.
PRORATION_QUANTUM = Decimal("0.000001")


def _period_rate(plan: Plan) -> Decimal:
    """Price per month, to compare plans of different intervals."""
    months = (12 if plan.interval == "year" else 1) * plan.interval_count
    return Decimal(plan.amount) / months


@transaction.atomic
def subscription_change_plan(*, subscription: Subscription, new_plan: Plan, actor: Actor,
                             now: datetime | None = None, reason: str = "") -> PlanChange:
    """Upgrades take effect now with a charge prorated to the second for the rest of the period, less
    the unused time of the old plan; downgrades wait for the period end."""
    now = now or timezone.now()
    subscription = subscription_lock(subscription_id=subscription.pk)
    old_plan = subscription.plan
    if not subscription.is_live:
        raise IllegalTransition("A canceled subscription cannot change plan.", code="subscription_canceled")
    if subscription.status == SubscriptionStatus.INCOMPLETE:
        # Its first invoice is unpaid: a zero-net proration invoice would settle and activate it unpaid.
        raise IllegalTransition("Pay the first invoice before changing plan.", code="subscription_incomplete")
    if subscription.status == SubscriptionStatus.PAUSED:
        # Nothing is billed while paused, so nothing can be prorated; resuming first makes the period real.
        raise IllegalTransition("Resume the subscription before changing plan.", code="subscription_paused")
    if new_plan.pk == old_plan.pk:
        raise InvalidOperation("The subscription is already on this plan.", code="same_plan")
    if not new_plan.is_active:
        raise InvalidOperation(f"Plan {new_plan.code} takes no new subscriptions.", code="plan_inactive")
    if new_plan.currency != old_plan.currency:
        raise InvalidOperation("Plans in another currency cannot be switched to.", code="currency_mismatch")
    if new_plan.interval != old_plan.interval or new_plan.interval_count != old_plan.interval_count:
        raise InvalidOperation("Switching billing interval is not supported mid-period; cancel and resubscribe.",
                               code="interval_mismatch")

    if _period_rate(new_plan) < _period_rate(old_plan) and subscription.status != SubscriptionStatus.TRIALING:
        subscription.scheduled_plan = new_plan
        subscription.save(update_fields=["scheduled_plan", "updated_at"])
        subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGE_SCHEDULED,
                                 actor=actor, reason=reason, from_plan=old_plan, to_plan=new_plan,
                                 from_status=subscription.status, to_status=subscription.status,
                                 data={"effective_at": subscription.current_period_end.isoformat()})
        return PlanChange(subscription=subscription, effective="period_end",
                          effective_at=subscription.current_period_end, invoice=None, proration_amount=0)

    invoice = None
    if subscription.status != SubscriptionStatus.TRIALING:
        start, end = subscription.current_period_start, subscription.current_period_end
        remaining = Decimal((end - max(now, start)).total_seconds()) / Decimal((end - start).total_seconds())
        # Quantized to the quantity column's 6 places before any amount is computed from it: the stored
        # line must satisfy amount == round(quantity x unit_amount), which `billing verify` checks.
        remaining = min(max(remaining, Decimal(0)), Decimal(1)).quantize(PRORATION_QUANTUM, rounding=ROUND_HALF_UP)
        lines = [
            LineSpec(kind=InvoiceLineKind.PRORATION, description=f"Unused time on {old_plan.name}",
                     unit_amount=-Decimal(old_plan.amount), quantity=remaining, period_start=now, period_end=end,
                     metadata={"plan": old_plan.code}),
            LineSpec(kind=InvoiceLineKind.PRORATION, description=f"Remaining time on {new_plan.name}",
                     unit_amount=Decimal(new_plan.amount), quantity=remaining, period_start=now, period_end=end,
                     metadata={"plan": new_plan.code}),
        ]
        invoice = invoice_create(customer=subscription.customer, subscription=subscription, lines=lines,
                                 billing_reason=BillingReason.SUBSCRIPTION_UPDATE, period_start=now, period_end=end)
        invoice = invoice_finalize(invoice=invoice, actor=actor, now=now)
    subscription.plan = new_plan
    subscription.scheduled_plan = None
    subscription.save(update_fields=["plan", "scheduled_plan", "updated_at"])
    subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED, actor=actor,
                             reason=reason, from_plan=old_plan, to_plan=new_plan, from_status=subscription.status,
                             to_status=subscription.status,
                             data={"invoice_id": invoice.pk if invoice else None})
    return PlanChange(subscription=subscription, effective="immediate", effective_at=now, invoice=invoice,
                      proration_amount=invoice.total if invoice else 0)
