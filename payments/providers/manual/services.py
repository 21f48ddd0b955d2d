"""The manual rail's one write: money staff received by hand (cash, check, bank transfer), recorded as
succeeded and applied to the invoice it pays. The admin's "Record manual payment" action and
`POST /api/v1/payments/` both call `payment_record_manual`, so both refuse the same things."""

from datetime import datetime

from django.db import transaction

from core.audit import Actor
from core.exceptions import InvalidOperation
from core.safe_input import BIGINT_MAX
from payments.models import MANUAL_PAYMENT_METHODS, MANUAL_PROVIDER, Invoice, InvoiceStatus, Payment, PaymentStatus
from payments.services.invoices import invoice_lock
from payments.services.payments import payment_create, payment_transition
from subscriptions.models import Customer

# Money may still arrive for an invoice written off as uncollectible; drafts, paid and void invoices take none.
PAYABLE_INVOICE_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)


def _refuse(field: str, message: str, *, code: str) -> InvalidOperation:
    return InvalidOperation(message, code=code, extra={"fields": {field: [message]}})


def _payment_check(*, amount: int, method: str) -> None:
    if method not in MANUAL_PAYMENT_METHODS:
        choices = ", ".join(MANUAL_PAYMENT_METHODS)
        raise _refuse("method", f"{method} is not a manual payment method ({choices}).", code="invalid_method")
    if not 0 < amount <= BIGINT_MAX:
        raise _refuse("amount", "A payment must be for a positive amount.", code="invalid_amount")


def _invoice_check(*, invoice: Invoice, customer: Customer, amount: int) -> None:
    """Checked on the locked row: two staff recording the same cheque from stale pages are told apart here."""
    if invoice.customer_id != customer.pk:
        raise _refuse("invoice", "The invoice belongs to another customer.", code="invoice_customer_mismatch")
    if invoice.status not in PAYABLE_INVOICE_STATUSES:
        raise _refuse("invoice", f"A {invoice.status} invoice takes no payment.", code="invoice_not_payable")
    if amount > invoice.amount_due:
        # The excess would have nowhere to go: there is no customer balance to keep it on.
        raise _refuse("amount", f"The invoice has {invoice.amount_due} {invoice.currency} (minor units) left to "
                                f"pay; record at most that.", code="amount_exceeds_due")


@transaction.atomic
def payment_record_manual(*, customer: Customer, amount: int, method: str, actor: Actor,
                          currency: str | None = None, invoice: Invoice | None = None, reference: str = "",
                          description: str = "", reason: str = "", now: datetime | None = None) -> Payment:
    """Record money received by hand as a succeeded payment and apply it to `invoice` (paid once fully
    covered), in one transaction with the invoice row locked. `currency` defaults to the invoice's (or,
    without one, the customer's) and must be it when given."""
    _payment_check(amount=amount, method=method)
    if invoice is not None:
        invoice = invoice_lock(invoice_id=invoice.pk)
        _invoice_check(invoice=invoice, customer=customer, amount=amount)
    expected = invoice.currency if invoice is not None else customer.currency
    if currency is not None and currency.upper() != expected.upper():
        raise _refuse("currency", f"This payment must be in {expected}, the currency of the "
                                  f"{'invoice' if invoice is not None else 'customer'}.", code="currency_mismatch")
    payment = payment_create(customer=customer, invoice=invoice, amount=amount, currency=expected,
                             method=method, provider=MANUAL_PROVIDER, reference=reference[:255],
                             description=description[:500])
    return payment_transition(payment=payment, to_status=PaymentStatus.SUCCEEDED, actor=actor,
                              reason=reason or f"{method} received", now=now,
                              provider_data={"reference": reference} if reference else None)
