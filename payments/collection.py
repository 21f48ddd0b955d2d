"""Collect an open invoice by charging the customer's saved payment method off-session.

The rail is whichever configured provider offers off-session charges and holds a saved payment method
for the customer (payments.providers); nothing here names a rail.

The billing run calls `invoice_collect` for due invoices and owns dunning (attempt_count,
next_attempt_at); this module never touches those fields. The Payment row is committed before the
provider is called and the charge carries its id in metadata, so whatever happens between the provider's
answer and our commit, the provider's webhook for that charge finds its payment.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import CardDeclined, IllegalTransition, PaymentProviderError
from payments.models import Invoice, InvoiceStatus, Payment, PaymentStatus
from payments.providers import (
    Capability,
    ChargeRequest,
    CustomerAccount,
    PaymentProvider,
    providers_installed,
    providers_with,
)
from payments.selectors.provider_accounts import provider_account_for_charge, row_has_saved_payment_method
from payments.services import payment_counted, payment_lock
from payments.services.payment_sync import observed_now, payment_sync_status

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
    """The idempotency key of one collection attempt: Payment.collection_key and the provider's key alike."""
    return f"invoice-{invoice_id}-attempt-{attempt}"


def _charge_account(*, invoice: Invoice) -> tuple[PaymentProvider, CustomerAccount] | None:
    """Among the configured rails that charge off-session, the customer's account whose payment method was
    saved last (docs/providers.md), with its rail; None when no such rail holds a saved method."""
    if not row_has_saved_payment_method(row=invoice, customer=invoice.customer):
        return None
    rails = {rail.code: rail for rail in providers_with(Capability.OFF_SESSION_CHARGE)}
    account = provider_account_for_charge(customer=invoice.customer, providers=rails)
    if account is None:
        return None
    return rails[account.provider], CustomerAccount.of(account)


def invoice_chargeable(*, invoice: Invoice) -> bool:
    """Whether `invoice_collect` would call a provider for this invoice (rather than answer
    no_payment_method at once): the billing run charges these outside its batch transaction."""
    return _charge_account(invoice=invoice) is not None


def _no_charge_account() -> CollectionResult:
    if not providers_with(Capability.OFF_SESSION_CHARGE):
        rails = [rail.unavailable_message for rail in providers_installed()
                 if Capability.OFF_SESSION_CHARGE in rail.capabilities]
        message = rails[0] if rails else _("No installed payment provider charges off-session.")
        return CollectionResult(outcome=NO_PAYMENT_METHOD, payment=None, message=message)
    return CollectionResult(outcome=NO_PAYMENT_METHOD, payment=None,
                            message=_("The customer has no saved card to charge."))


def invoice_collect(*, invoice: Invoice, actor: Actor, now: datetime) -> CollectionResult:
    """Charge `invoice.amount_due` to the customer's saved payment method, once per dunning attempt."""
    charge_account = _charge_account(invoice=invoice)
    if charge_account is None:
        return _no_charge_account()
    rail, account = charge_account
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) or invoice.amount_due <= 0:
        raise IllegalTransition(_("Invoice %(invoice)s (%(status)s, %(due)s due) takes no payment.")
                                % {"invoice": invoice, "status": invoice.status, "due": invoice.amount_due},
                                code="invoice_not_payable")
    in_flight = invoice.payments.filter(provider=rail.code, status__in=[P.PROCESSING]).order_by("id").first()
    if in_flight is not None:
        # A bank debit still on its way: charging again could collect twice.
        return CollectionResult(outcome=PROCESSING, payment=in_flight,
                                message=_("An earlier payment for this invoice is still processing."))

    key = collection_key(invoice_id=invoice.pk, attempt=invoice.attempt_count + 1)
    # Insert-or-find on the unique collection_key: two collectors on one attempt get the same row.
    with transaction.atomic():
        payment, created = Payment.objects.get_or_create(
            collection_key=key, defaults={"customer": invoice.customer, "invoice": invoice,
                                          "amount": invoice.amount_due, "currency": invoice.currency,
                                          "method": rail.code, "provider": rail.code})
        if created:
            payment_counted(payment_id=payment.pk)
    if not created and payment.status != P.PENDING:
        # This attempt already ran (the billing run retried before recording it): same answer, no charge.
        return _result(payment)

    try:
        result = rail.charge_off_session(ChargeRequest(
            account=account, amount=payment.amount, currency=payment.currency, idempotency_key=key,
            metadata={"payment_id": str(payment.pk), "invoice_id": str(invoice.pk),
                      "invoice_number": invoice.number or ""},
        ))
    except (CardDeclined, PaymentProviderError) as exc:
        return _record_failure(rail=rail, payment=payment, exc=exc, actor=actor, now=now)

    with transaction.atomic():
        payment = payment_lock(payment_id=payment.pk)
        rail.charge_apply(payment=payment, result=result, observed_at=observed_now(), actor=actor,
                          reason=f"off-session charge, attempt {invoice.attempt_count + 1}", now=now)
    return _result(payment)


def _record_failure(*, rail: PaymentProvider, payment: Payment, exc: CardDeclined | PaymentProviderError,
                    actor: Actor, now: datetime) -> CollectionResult:
    """A refused card, or a provider error after which the charge's fate is unknown. Both are a failed
    attempt for dunning; if the provider did charge after all, its webhook (finding the payment through
    the payment id in the charge's metadata) moves the payment on, as failed -> succeeded is allowed."""
    failure_code = exc.extra.get("decline_code") or exc.extra.get("provider_code") or exc.code
    with transaction.atomic():
        payment = payment_lock(payment_id=payment.pk)
        if exc.extra.get("reference"):
            rail.payment_reference_set(payment=payment, reference=exc.extra["reference"])
        payment_sync_status(payment=payment, to_status=P.FAILED, observed_at=observed_now(), actor=actor,
                            reason=f"off-session charge failed: {exc.message}",
                            provider_data={"error": exc.code, **exc.extra}, failure_code=failure_code,
                            failure_reason=exc.message, now=now)
    if isinstance(exc, PaymentProviderError):
        logger.warning("%s error collecting invoice #%s (payment #%s): %s", rail.code, payment.invoice_id,
                       payment.pk, exc)
    return CollectionResult(outcome=FAILED, payment=payment, message=exc.message)
