"""Collect an open invoice by charging the customer's saved card off-session.

The billing run calls `invoice_collect` for due invoices and owns dunning (attempt_count,
next_attempt_at); this module never touches those fields. The Payment row is committed before Stripe is
called and the PaymentIntent carries its id in metadata, so whatever happens between Stripe's answer and
our commit, the webhook for that PaymentIntent finds its payment.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from core.audit import Actor
from core.exceptions import CardDeclined, IllegalTransition, PaymentProviderError
from payments import stripe_gateway
from payments.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from payments.services import payment_lock
from payments.stripe_sync import observed_now, payment_sync_intent, payment_sync_status

logger = logging.getLogger(__name__)

P = PaymentStatus


@dataclass(frozen=True)
class CollectionResult:
    outcome: str  # "succeeded" | "processing" | "failed" | "no_payment_method"
    payment: Payment | None
    message: str = ""


# The outcomes the billing run's dunning step branches on.
SUCCEEDED = "succeeded"
PROCESSING = "processing"
FAILED = "failed"
NO_PAYMENT_METHOD = "no_payment_method"

_OUTCOME = {P.SUCCEEDED: SUCCEEDED, P.PROCESSING: PROCESSING, P.PENDING: PROCESSING,
            P.FAILED: FAILED, P.CANCELED: FAILED}


def _result(payment: Payment) -> CollectionResult:
    outcome = _OUTCOME.get(payment.status, SUCCEEDED)
    message = payment.failure_reason if outcome == FAILED else ""
    return CollectionResult(outcome=outcome, payment=payment, message=message)


def collection_key(*, invoice_id: int, attempt: int) -> str:
    """The idempotency key of one collection attempt: Payment.collection_key and Stripe's key alike."""
    return f"invoice-{invoice_id}-attempt-{attempt}"


def invoice_chargeable(*, invoice: Invoice) -> bool:
    """Whether `invoice_collect` would call Stripe for this invoice (rather than answer no_payment_method
    at once): the billing run charges these outside its batch transaction."""
    customer = invoice.customer
    return (stripe_gateway.is_configured() and bool(customer.stripe_customer_id)
            and bool(customer.stripe_default_payment_method_id))


def invoice_collect(*, invoice: Invoice, actor: Actor, now: datetime) -> CollectionResult:
    """Charge `invoice.amount_due` to the customer's default card, once per dunning attempt."""
    if not stripe_gateway.is_configured():
        return CollectionResult(outcome=NO_PAYMENT_METHOD, payment=None, message=stripe_gateway.NOT_CONFIGURED)
    customer = invoice.customer
    if not invoice_chargeable(invoice=invoice):
        return CollectionResult(outcome=NO_PAYMENT_METHOD, payment=None,
                                message="The customer has no saved card to charge.")
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) or invoice.amount_due <= 0:
        raise IllegalTransition(f"Invoice {invoice} ({invoice.status}, {invoice.amount_due} due) takes no payment.",
                                code="invoice_not_payable")
    in_flight = invoice.payments.filter(method=PaymentMethod.STRIPE,
                                        status__in=[P.PROCESSING]).order_by("id").first()
    if in_flight is not None:
        # A bank debit still on its way: charging again could collect twice.
        return CollectionResult(outcome=PROCESSING, payment=in_flight,
                                message="An earlier payment for this invoice is still processing.")

    key = collection_key(invoice_id=invoice.pk, attempt=invoice.attempt_count + 1)
    # Insert-or-find on the unique collection_key: two collectors on one attempt get the same row.
    payment, created = Payment.objects.get_or_create(
        collection_key=key, defaults={"customer": customer, "invoice": invoice, "amount": invoice.amount_due,
                                      "currency": invoice.currency, "method": PaymentMethod.STRIPE})
    if not created and payment.status != P.PENDING:
        # This attempt already ran (the billing run retried before recording it): same answer, no charge.
        return _result(payment)

    try:
        intent = stripe_gateway.payment_intent_charge_off_session(
            customer_id=customer.stripe_customer_id, payment_method_id=customer.stripe_default_payment_method_id,
            amount=payment.amount, currency=payment.currency, idempotency_key=key,
            metadata={"payment_id": str(payment.pk), "invoice_id": str(invoice.pk),
                      "invoice_number": invoice.number or ""},
        )
    except (CardDeclined, PaymentProviderError) as exc:
        return _record_failure(payment=payment, exc=exc, actor=actor, now=now)

    with transaction.atomic():
        payment = payment_lock(payment_id=payment.pk)
        payment_sync_intent(payment=payment, intent=intent, observed_at=observed_now(), actor=actor,
                            reason=f"off-session charge, attempt {invoice.attempt_count + 1}", now=now)
    return _result(payment)


def _record_failure(*, payment: Payment, exc: CardDeclined | PaymentProviderError, actor: Actor,
                    now: datetime) -> CollectionResult:
    """A refused card, or a provider error after which the charge's fate is unknown. Both are a failed
    attempt for dunning; if Stripe did charge after all, payment_intent.succeeded (found through the
    payment id in the PaymentIntent's metadata) moves the payment on, as failed -> succeeded is allowed."""
    failure_code = exc.extra.get("decline_code") or exc.extra.get("stripe_code") or exc.code
    with transaction.atomic():
        payment = payment_lock(payment_id=payment.pk)
        intent_id = exc.extra.get("payment_intent_id")
        if intent_id and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent_id
            payment.save(update_fields=["stripe_payment_intent_id", "updated_at"])
        payment_sync_status(payment=payment, to_status=P.FAILED, observed_at=observed_now(), actor=actor,
                            reason=f"off-session charge failed: {exc.message}",
                            provider_data={"error": exc.code, **exc.extra}, failure_code=failure_code,
                            failure_reason=exc.message, now=now)
    if isinstance(exc, PaymentProviderError):
        logger.warning("Stripe error collecting invoice #%s (payment #%s): %s", payment.invoice_id, payment.pk, exc)
    return CollectionResult(outcome=FAILED, payment=payment, message=exc.message)
