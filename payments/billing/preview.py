"""`manage.py billing preview CUSTOMER`: the invoice the next billing run would issue, without writing.

It uses the same line builder as the run: the fee of the plan in force next period (a scheduled
downgrade applies) and the usage of the current period so far, priced in arrears."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing_project.exceptions import BillingError
from payments.billing.lines import credit_pack_lines, lines_subtotal, period_lines
from payments.billing.renewals import next_period, trial_needs_cancel
from payments.models import CreditPackOrder, CreditPackOrderStatus
from payments.services import LineSpec, invoice_line_amount
from subscriptions.models import Customer, SubscriptionStatus
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
            raise BillingError(f"Several customers use {reference}; give the id instead.", code="ambiguous_customer")
        customer = matches[0] if matches else None
    if customer is None:
        customer = Customer.objects.filter(external_id=reference).first()
    if customer is None:
        raise CustomerNotFound(f"No customer with id, email or external id {reference!r}.")
    return customer


def invoice_preview(*, customer: Customer) -> InvoicePreview:
    subscription = subscription_live_for_customer(customer=customer)
    if subscription is None:
        return InvoicePreview(customer=customer, issue_at=None, lines=[], subtotal=0, total=0,
                              note="no live subscription")
    if subscription.status in (SubscriptionStatus.PAUSED, SubscriptionStatus.INCOMPLETE):
        return InvoicePreview(customer=customer, issue_at=None, lines=[], subtotal=0, total=0,
                              note=f"subscription is {subscription.status}: nothing renews")
    trial = subscription.status == SubscriptionStatus.TRIALING
    fee_plan = subscription.scheduled_plan or subscription.plan
    ends = subscription.cancel_at_period_end or (trial and trial_needs_cancel(subscription=subscription,
                                                                                plan=fee_plan))
    start, end = subscription.current_period_start, subscription.current_period_end
    prices = [] if trial else list(MeterPrice.objects.filter(plan=subscription.plan).select_related("meter"))
    usage = {price.meter_id: usage_aggregate(customer=customer, meter=price.meter, start=start, end=end)
             for price in prices}
    fee_start = fee_end = None
    if not ends:
        fee_start, fee_end = next_period(subscription=subscription, plan=fee_plan)
    specs = period_lines(fee_plan=None if ends else fee_plan, fee_start=fee_start, fee_end=fee_end, prices=prices,
                         usage=usage, usage_start=None if trial else start, usage_end=None if trial else end)
    # The run bills the orders placed before the period ends; the preview runs earlier, so all pending ones.
    specs += credit_pack_lines(orders=list(CreditPackOrder.objects.filter(
        customer=customer, status=CreditPackOrderStatus.PENDING, currency=customer.currency,
        created_at__lt=end).order_by("pk")))
    subtotal = lines_subtotal(specs)
    lines = [PreviewLine(spec=s, amount=invoice_line_amount(quantity=s.quantity, unit_amount=s.unit_amount))
             for s in specs]
    note = "the subscription ends at period end" if ends else ""
    if not specs and not ends:
        note = "renews without an invoice (nothing to charge)"
    return InvoicePreview(customer=customer, issue_at=end, lines=lines, subtotal=subtotal, total=max(subtotal, 0),
                          note=note)


def quantity_text(value: Decimal) -> str:
    return f"{value.normalize():f}"
