"""A small business whose dashboard figures are known by hand (see test_selectors.py)."""

from datetime import timedelta

from django.utils import timezone

from core.audit import Actor
from credits.models import CreditBalance
from credits.services import credit_debit, credit_grant
from payments.models import InvoiceStatus, PaymentStatus
from payments.tests.factories import InvoiceFactory, PaymentFactory
from subscriptions.models import SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

ACTOR = Actor.system("test")
NOW = timezone.now()


def build_books() -> None:
    """A small business whose figures are known by hand."""
    monthly = PlanFactory(code="monthly", amount=1000)
    yearly = PlanFactory(code="yearly", amount=12000, interval="year")
    quarterly_eur = PlanFactory(code="quarterly-eur", amount=3000, currency="EUR", interval_count=3)
    SubscriptionFactory(plan=monthly, status=SubscriptionStatus.ACTIVE, customer__user=None)
    SubscriptionFactory(plan=yearly, status=SubscriptionStatus.ACTIVE, cancel_at_period_end=True,
                        customer__user=None)
    SubscriptionFactory(plan=quarterly_eur, status=SubscriptionStatus.PAST_DUE,
                        customer=CustomerFactory(currency="EUR", user=None))
    for status in (SubscriptionStatus.TRIALING, SubscriptionStatus.INCOMPLETE, SubscriptionStatus.PAUSED,
                   SubscriptionStatus.CANCELED, SubscriptionStatus.CANCELED):
        SubscriptionFactory(plan=monthly, status=status, customer__user=None)

    for number, (status, amount_due, due_in_days, currency) in enumerate([
        (InvoiceStatus.OPEN, 1500, -3, "USD"),
        (InvoiceStatus.OPEN, 2500, 10, "USD"),
        (InvoiceStatus.OPEN, 700, -1, "EUR"),
        (InvoiceStatus.PAID, 0, -20, "USD"),
        (InvoiceStatus.UNCOLLECTIBLE, 9900, -60, "USD"),
        (InvoiceStatus.DRAFT, 4000, None, "USD"),
    ]):
        InvoiceFactory(status=status, number=None if status == InvoiceStatus.DRAFT else f"INV-T-{number}",
                       currency=currency, customer=CustomerFactory(currency=currency, user=None), total=amount_due,
                       amount_due=amount_due,
                       due_date=None if due_in_days is None else NOW + timedelta(days=due_in_days))

    for status, amount, refunded, days_ago, currency in [
        (PaymentStatus.SUCCEEDED, 5000, 0, 2, "USD"),
        (PaymentStatus.PARTIALLY_REFUNDED, 3000, 1000, 29, "USD"),
        (PaymentStatus.REFUNDED, 800, 800, 5, "EUR"),
        (PaymentStatus.SUCCEEDED, 9999, 0, 31, "USD"),  # outside the window
        (PaymentStatus.FAILED, 4444, 0, 1, "USD"),
        (PaymentStatus.PENDING, 4444, 0, 1, "USD"),
    ]:
        PaymentFactory(status=status, amount=amount, amount_refunded=refunded, currency=currency,
                       customer=CustomerFactory(currency=currency, user=None),
                       succeeded_at=NOW - timedelta(days=days_ago) if status != PaymentStatus.FAILED else None)

    rich, spent = CustomerFactory(user=None), CustomerFactory(user=None)
    credit_grant(customer=rich, amount=300, source="purchase", actor=ACTOR)
    credit_grant(customer=spent, amount=40, source="promotion", actor=ACTOR)
    credit_debit(customer=spent, amount=40, actor=ACTOR)
    CreditBalance.objects.create(customer=CustomerFactory(user=None))
