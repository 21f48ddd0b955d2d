"""Collecting an open invoice from its customer's saved payment method.

This build has no card gateway: an invoice is collectible only once a Stripe payment method and key
exist, and then `PaymentProviderUnavailable` says the gateway module is missing. `invoice_collect` never
touches `attempt_count` or `next_attempt_at`: the dunning step of the billing run owns the schedule and
sets both from the outcome returned here."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from billing_project.audit import Actor
from billing_project.exceptions import PaymentProviderUnavailable
from payments.models import Invoice, Payment


@dataclass(frozen=True)
class CollectionResult:
    outcome: str  # "succeeded" | "processing" | "failed" | "no_payment_method"
    payment: Payment | None
    message: str = ""


SUCCEEDED = "succeeded"
PROCESSING = "processing"
FAILED = "failed"
NO_PAYMENT_METHOD = "no_payment_method"


def invoice_collect(*, invoice: Invoice, actor: Actor, now: datetime) -> CollectionResult:
    """Charge the (locked, open) invoice's amount due off-session, with the idempotency key
    f"invoice-{invoice.pk}-attempt-{invoice.attempt_count + 1}" so a retried attempt charges once."""
    customer = invoice.customer
    if not customer.stripe_default_payment_method_id or not settings.STRIPE_SECRET_KEY:
        return CollectionResult(outcome=NO_PAYMENT_METHOD, payment=None,
                                message="the customer has no saved payment method to charge")
    raise PaymentProviderUnavailable("Card collection needs the Stripe gateway, which this build does not include.")
