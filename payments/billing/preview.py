"""`manage.py billing preview CUSTOMER`: the invoice the next billing run would issue, without writing.

It uses the same line builder as the run: the fee of the plan in force next period (a scheduled
downgrade applies) and the usage of the current period so far, priced in arrears."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from core.exceptions import BillingError
from payments.billing.decision import decision_lines, renewal_decide
from payments.billing.lines import credit_pack_lines, lines_subtotal
from payments.models import CreditPackOrder, CreditPackOrderStatus
from payments.services import LineSpec, invoice_line_amount, invoice_total
from subscriptions.models import Customer
from subscriptions.selectors import subscription_live_for_customer
from usage.models import MeterPrice
from usage.selectors import usage_aggregate


class CustomerNotFound(BillingError):
    http_status = 404
    code = "customer_not_found"


@dataclass(frozen=True)
class PreviewLine:
    spec: LineSpec
    amount: int


@dataclass(frozen=True)
class InvoicePreview:
    customer: Customer
    issue_at: datetime | None
    lines: list[PreviewLine]
    subtotal: int
    total: int
    # Why there is no upcoming invoice (or what happens instead), empty when there is one.
    note: str = ""


def customer_find(*, reference: str) -> Customer:
    """A customer by primary key, email or external id."""
    reference = reference.strip()
    customer = None
    if reference.isdigit():
        customer = Customer.objects.filter(pk=int(reference)).first()
    if customer is None and "@" in reference:
        matches = list(Customer.objects.filter(email__iexact=reference)[:2])
        if len(matches) > 1:
            raise BillingError(_("Several customers use %(reference)s; give the id instead.")
                               % {"reference": reference},
                               code="ambiguous_customer")
        customer = matches[0] if matches else None
    if customer is None:
        customer = Customer.objects.filter(external_id=reference).first()
    if customer is None:
        raise CustomerNotFound(_("No customer with id, email or external id %(reference)r.") % {"reference": reference})
    return customer


def invoice_preview(*, customer: Customer) -> InvoicePreview:
    """What the billing run will issue when the live subscription's period ends: the renewal decision at
    that instant, with the usage of the current period so far."""
    subscription = subscription_live_for_customer(customer=customer)
    if subscription is None:
        return InvoicePreview(customer=customer, issue_at=None, lines=[], subtotal=0, total=0,
                              note="no live subscription")
    start, end = subscription.current_period_start, subscription.current_period_end
    decision = renewal_decide(subscription=subscription, at=end)
    if not (decision.renews or decision.ends):
        return InvoicePreview(customer=customer, issue_at=None, lines=[], subtotal=0, total=0,
                              note=f"subscription is {subscription.status}: nothing renews")
    prices = list(MeterPrice.objects.filter(plan=subscription.plan).select_related("meter"))
    usage = {} if decision.usage_start is None else {
        price.meter_id: usage_aggregate(customer=customer, meter=price.meter, start=start, end=end) for price in prices}
    specs = decision_lines(decision=decision, prices=prices, usage=usage)
    # The run bills the pending orders placed before the period ends.
    specs += credit_pack_lines(orders=list(CreditPackOrder.objects.filter(
        customer=customer, status=CreditPackOrderStatus.PENDING, currency=customer.currency,
        created_at__lt=end).order_by("pk")))
    subtotal = lines_subtotal(specs)
    lines = [PreviewLine(spec=s, amount=invoice_line_amount(quantity=s.quantity, unit_amount=s.unit_amount))
             for s in specs]
    note = "the subscription ends at period end" if decision.ends else ""
    if not specs and not decision.ends:
        note = "renews without an invoice (nothing to charge)"
    return InvoicePreview(customer=customer, issue_at=end, lines=lines, subtotal=subtotal,
                          total=invoice_total(subtotal=subtotal), note=note)


def quantity_text(value: Decimal) -> str:
    return f"{value.normalize():f}"
