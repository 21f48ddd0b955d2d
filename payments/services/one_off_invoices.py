"""One-off invoices: a setup fee, a consulting day. Staff write the lines by hand (API and admin), the
invoice starts as a draft with a note to the customer, and `invoice_finalize` issues it like any other
(number, due date, collection), so it is then paid through any rail."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from core.exceptions import InvalidOperation
from core.safe_input import BIGINT_MAX
from payments.models import BillingReason, Invoice, InvoiceLineKind
from payments.services.invoices import LineSpec, invoice_create, invoice_line_amount
from subscriptions.models import Customer

# Enough for any hand-written invoice; bounds the work (and the page) one request can ask for.
ONE_OFF_MAX_LINES = 100


@dataclass(frozen=True)
class OneOffLine:
    description: str
    # A positive whole or decimal number (6 places at most, the column's); the amount is rounded once.
    quantity: Decimal
    # Minor units of the invoice's currency per unit.
    unit_amount: int


def _refuse(field: str, message: str, *, code: str) -> InvalidOperation:
    return InvalidOperation(message, code=code, extra={"fields": {field: [message]}})


def _line_problem(line: OneOffLine) -> str | None:
    if not line.description.strip():
        return "A line needs a description."
    if line.quantity <= 0:
        return "The quantity must be positive."
    if line.unit_amount < 0:
        return "The unit amount cannot be negative."
    # Compared before rounding: past the column, the product also has more digits than Decimal rounds exactly.
    if line.quantity * line.unit_amount > BIGINT_MAX \
            or invoice_line_amount(quantity=line.quantity, unit_amount=Decimal(line.unit_amount)) > BIGINT_MAX:
        return "Quantity times unit amount is too large to store."
    return None


def invoice_one_off_check(*, customer: Customer, currency: str, lines: list[OneOffLine]) -> list[int]:
    """Refuse what a one-off invoice cannot be (InvalidOperation naming the field); answer the line
    amounts. Shared by the API and the admin's add form, so both refuse the same things."""
    if currency.upper() != customer.currency.upper():
        raise _refuse("currency", f"The customer is billed in {customer.currency}, not {currency}.",
                      code="currency_mismatch")
    if not 1 <= len(lines) <= ONE_OFF_MAX_LINES:
        raise _refuse("lines", f"An invoice needs 1 to {ONE_OFF_MAX_LINES} lines.", code="invalid_lines")
    problems = {str(index): [problem] for index, line in enumerate(lines) if (problem := _line_problem(line))}
    if problems:
        first = next(iter(problems.values()))[0]
        raise InvalidOperation(first, code="invalid_lines", extra={"fields": {"lines": problems}})
    amounts = [invoice_line_amount(quantity=line.quantity, unit_amount=Decimal(line.unit_amount)) for line in lines]
    if sum(amounts) > BIGINT_MAX:
        raise _refuse("lines", "The invoice's total is too large to store.", code="invalid_lines")
    if sum(amounts) == 0:
        raise _refuse("lines", "The invoice's total is zero: there is nothing to bill.", code="nothing_to_invoice")
    return amounts


@transaction.atomic
def invoice_one_off_create(*, customer: Customer, currency: str, lines: list[OneOffLine], note: str = "") -> Invoice:
    """A draft manual invoice with these lines (kind `adjustment`, an ad-hoc charge) and a note to the
    customer; finalize it with `invoice_finalize`."""
    invoice_one_off_check(customer=customer, currency=currency, lines=lines)
    specs = [LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description=line.description.strip(), quantity=line.quantity,
                      unit_amount=Decimal(line.unit_amount)) for line in lines]
    return invoice_create(customer=customer, lines=specs, billing_reason=BillingReason.MANUAL, note=note.strip())
