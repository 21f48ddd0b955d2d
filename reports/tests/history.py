"""A random, seeded business history written straight into the tables (with the timestamps a real one
would have), for tests that recompute every report by plain SQL and compare.

Each customer lives through subscriptions period by period: invoices with the plan fee line, payments on
every rail and status, refunds, plan changes at renewal, cancellations and comebacks, overdue invoices,
and a credit ledger (grants of every source, debits, expiries)."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from credits.models import CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind
from payments.billing.rollup_groups import rollups_rebuild
from payments.models import (
    MANUAL_PAYMENT_METHODS,
    MANUAL_PROVIDER,
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from subscriptions.models import (
    BillingInterval,
    Customer,
    Plan,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from subscriptions.periods import add_months, months_per_period

HISTORY_START = datetime(2025, 1, 1, tzinfo=UTC)
HISTORY_END = datetime(2026, 7, 1, tzinfo=UTC)


@dataclass
class History:
    plans: list[Plan]
    customers: list[Customer] = field(default_factory=list)


def _plans() -> list[Plan]:
    month, year = BillingInterval.MONTH, BillingInterval.YEAR
    specs = [("h-basic", 1000, "USD", month, 1), ("h-pro", 2500, "USD", month, 1),
             ("h-pro-year", 25000, "USD", year, 1), ("h-quarter", 2700, "USD", month, 3),
             ("h-eu", 900, "EUR", month, 1), ("h-eu-plus", 1999, "EUR", month, 1), ("h-free", 0, "USD", month, 1)]
    return [Plan.objects.create(code=code, name=code, amount=amount, currency=currency, interval=interval,
                                interval_count=count) for code, amount, currency, interval, count in specs]


def _stamp(model, pk: int, when: datetime) -> None:
    """Audit rows take `created_at` from the clock; history needs its own instant."""
    model.objects.filter(pk=pk).update(created_at=when)


def history_build(*, seed: int, customers: int = 24) -> History:
    rng = random.Random(seed)
    history = History(plans=_plans())
    for n in range(customers):
        currency = rng.choice(["USD", "USD", "EUR"])
        customer = Customer.objects.create(name=f"h{n}", email=f"h{n}@example.com", currency=currency)
        history.customers.append(customer)
        _customer_life(rng, customer, [p for p in history.plans if p.currency == currency])
        _credit_life(rng, customer)
    # Written straight into the tables, past the services that keep the report rollups: backfill them.
    rollups_rebuild()
    return history


def _customer_life(rng: random.Random, customer: Customer, plans: list[Plan]) -> None:
    start = HISTORY_START + timedelta(days=rng.randrange(0, 400), hours=rng.randrange(24))
    while start < HISTORY_END:
        plan = rng.choice(plans)
        ended_at = _subscription_life(rng, customer, plan, plans, start)
        if ended_at is None or rng.random() < 0.5:
            return
        start = ended_at + timedelta(days=rng.randrange(1, 120))


def _subscription_life(rng, customer, plan, plans, start) -> datetime | None:
    """One subscription from `start`; the instant it ended, or None while it lives on."""
    sub = Subscription.objects.create(customer=customer, plan=plan, status=SubscriptionStatus.ACTIVE,
                                      billing_cycle_anchor=start, current_period_start=start,
                                      current_period_end=add_months(start, 1))
    event = SubscriptionEvent.objects.create(subscription=sub, kind=SubscriptionEventKind.CREATED,
                                             to_status=SubscriptionStatus.ACTIVE, to_plan=plan)
    _stamp(SubscriptionEvent, event.pk, start)
    period_start = start
    while True:
        period_end = add_months(period_start, months_per_period(interval=plan.interval,
                                                                interval_count=plan.interval_count))
        if plan.amount:
            _period_invoice(rng, sub, plan, period_start, period_end)
        sub.plan, sub.current_period_start, sub.current_period_end = plan, period_start, period_end
        if period_end >= HISTORY_END:
            sub.save()
            return None
        roll = rng.random()
        if roll < 0.12:
            return _end(rng, sub, period_start, period_end)
        if roll < 0.3:
            new_plan = rng.choice(plans)
            if new_plan != plan:
                event = SubscriptionEvent.objects.create(
                    subscription=sub, kind=SubscriptionEventKind.PLAN_CHANGED, from_plan=plan, to_plan=new_plan,
                    from_status=SubscriptionStatus.ACTIVE, to_status=SubscriptionStatus.ACTIVE)
                _stamp(SubscriptionEvent, event.pk, period_end)
                plan = new_plan
        period_start = period_end


def _end(rng, sub, period_start, period_end) -> datetime:
    """Canceled at period end, or at once in the middle of the period."""
    ended_at = period_end if rng.random() < 0.7 else period_start + (period_end - period_start) / 2
    sub.status, sub.canceled_at, sub.ended_at = SubscriptionStatus.CANCELED, ended_at, ended_at
    sub.save()
    event = SubscriptionEvent.objects.create(subscription=sub, kind=SubscriptionEventKind.STATUS_CHANGED,
                                             from_status=SubscriptionStatus.ACTIVE,
                                             to_status=SubscriptionStatus.CANCELED)
    _stamp(SubscriptionEvent, event.pk, ended_at)
    return ended_at


def _period_invoice(rng, sub, plan, period_start, period_end) -> None:
    status = rng.choices([InvoiceStatus.PAID, InvoiceStatus.OPEN, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE],
                         weights=[80, 10, 5, 5])[0]
    extra = rng.choice([0, 0, 0, 350])  # usage in arrears on some invoices
    total = plan.amount + extra
    paid = total if status == InvoiceStatus.PAID else 0
    invoice = Invoice.objects.create(
        number=f"H-{sub.pk}-{period_start:%Y%m%d%H%M}", customer=sub.customer, subscription=sub,
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=period_start, period_end=period_end,
        status=status, currency=plan.currency, subtotal=total, total=total, amount_paid=paid,
        amount_due=0 if status in (InvoiceStatus.PAID, InvoiceStatus.VOID) else total - paid,
        issued_at=period_start, due_date=period_start + timedelta(days=rng.choice([0, 7, 14, 30])),
        paid_at=period_start + timedelta(hours=rng.randrange(1, 100)) if paid else None)
    InvoiceLine.objects.create(invoice=invoice, kind=InvoiceLineKind.SUBSCRIPTION, description=plan.name,
                               unit_amount=Decimal(plan.amount), amount=plan.amount, period_start=period_start,
                               period_end=period_end)
    if extra:
        InvoiceLine.objects.create(invoice=invoice, kind=InvoiceLineKind.USAGE, description="usage",
                                   quantity=Decimal(350), unit_amount=Decimal(1), amount=extra)
    if paid:
        _payments(rng, invoice)


def _payments(rng, invoice: Invoice) -> None:
    method = rng.choice(PaymentMethod.values)
    provider = MANUAL_PROVIDER if method in MANUAL_PAYMENT_METHODS else method
    if rng.random() < 0.2:  # a failed attempt first
        failed = Payment.objects.create(customer=invoice.customer, invoice=invoice, amount=invoice.total,
                                        currency=invoice.currency, method=method, provider=provider,
                                        status=PaymentStatus.FAILED)
        Payment.objects.filter(pk=failed.pk).update(created_at=invoice.issued_at)
    refunded = rng.choice([0, 0, 0, 0, invoice.total // 2, invoice.total])
    status = {0: PaymentStatus.SUCCEEDED, invoice.total: PaymentStatus.REFUNDED}.get(
        refunded, PaymentStatus.PARTIALLY_REFUNDED)
    payment = Payment.objects.create(customer=invoice.customer, invoice=invoice, amount=invoice.total,
                                     currency=invoice.currency, method=method, provider=provider, status=status,
                                     amount_refunded=refunded, succeeded_at=invoice.paid_at)
    Payment.objects.filter(pk=payment.pk).update(created_at=invoice.paid_at - timedelta(minutes=5))
    if refunded:
        refund = Refund.objects.create(payment=payment, provider=provider, amount=refunded, currency=invoice.currency,
                                       status=RefundStatus.SUCCEEDED)
        _stamp(Refund, refund.pk, invoice.paid_at + timedelta(days=rng.randrange(1, 40)))
        if rng.random() < 0.5:
            failed = Refund.objects.create(payment=payment, provider=provider, amount=1, currency=invoice.currency,
                                           status=RefundStatus.FAILED)
            _stamp(Refund, failed.pk, invoice.paid_at + timedelta(days=2))


def _credit_life(rng: random.Random, customer: Customer) -> None:
    balance, when = 0, HISTORY_START + timedelta(days=rng.randrange(0, 60))
    while when < HISTORY_END:
        if balance and rng.random() < 0.5:
            kind = rng.choice([LedgerKind.DEBIT, LedgerKind.DEBIT, LedgerKind.EXPIRY])
            amount = -rng.randrange(1, balance + 1)
            grant = None
        else:
            kind, amount = rng.choice([LedgerKind.GRANT, LedgerKind.GRANT, LedgerKind.REFUND]), rng.randrange(1, 500)
            grant = None
            if kind == LedgerKind.GRANT:
                grant = CreditGrant.objects.create(customer=customer, amount=amount, remaining=amount,
                                                   source=rng.choice(CreditSource.values), effective_at=when)
        balance += amount
        entry = CreditLedgerEntry.objects.create(customer=customer, kind=kind, amount=amount, balance_after=balance,
                                                 grant=grant)
        _stamp(CreditLedgerEntry, entry.pk, when)
        when += timedelta(days=rng.randrange(3, 50), hours=rng.randrange(24))
