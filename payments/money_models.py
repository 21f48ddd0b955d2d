"""Money rollups: per UTC day, what the payment summary and revenue reports sum, kept in the same
transaction as every change that moves them (a payment created or moving status, a refund applied, an
invoice issued, voided or written off, a subscription changing plan), so a report over whole days reads a
few hundred rows instead of a year of invoices and payments. Written only through
`payments.services.money_rollups`; `manage.py billing verify` recomputes them from the invoices, payments
and refunds, `manage.py billing rollups-rebuild --only money` writes them from scratch.

Each row's counts say whether anything was there at all: a report shows a group for an invoice of total 0
(a free plan) just as the source rows would, and rows whose counts fell back to 0 are skipped."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class PaymentDay(models.Model):
    """Payments created on a UTC day, by currency, method and *current* status: the payment summary. A
    status move or a refund moves the payment between rows (or its amount refunded within one)."""

    currency = models.CharField(_("currency"), max_length=3)
    day = models.DateField(_("day"))
    method = models.CharField(_("method"), max_length=16)
    status = models.CharField(_("status"), max_length=20)
    count = models.BigIntegerField(_("count"), default=0, db_default=0)
    # Integer minor units of `currency`, summed exactly (never floats, never converted).
    amount = models.BigIntegerField(_("amount"), default=0, db_default=0)
    amount_refunded = models.BigIntegerField(_("amount refunded"), default=0, db_default=0)

    class Meta:
        verbose_name = _("payment day")
        verbose_name_plural = _("payment days")
        constraints = [models.UniqueConstraint(fields=["day", "currency", "method", "status"],
                                               name="payment_day_once")]

    def __str__(self) -> str:
        return f"{self.day} {self.currency} {self.method} {self.status}: {self.count}"


class RevenueDay(models.Model):
    """Revenue on a UTC day, by currency, payment method and plan: invoices issued that day (not void),
    payments that succeeded that day, refunds that succeeded, by the day they were made."""

    currency = models.CharField(_("currency"), max_length=3)
    day = models.DateField(_("day"))
    # The payment's method for collected and refunded money; "" for invoices, which have none.
    method = models.CharField(_("method"), max_length=16)
    # The plan the invoice's subscription is on *today* (the report's plan key), 0 without one. A plain
    # integer, not a foreign key: 0 keeps the unique key usable by ON CONFLICT (NULLs never conflict), and a
    # plan change moves the subscription's history between keys (payments.services.money_rollups).
    plan_id = models.BigIntegerField(_("plan id"))
    invoices = models.BigIntegerField(_("invoices"), default=0, db_default=0)
    # Integer minor units of `currency` (never floats, never converted), like every amount below.
    invoiced = models.BigIntegerField(_("invoiced"), default=0, db_default=0)
    # Still due on the day's invoices that are now uncollectible.
    written_off = models.BigIntegerField(_("written off"), default=0, db_default=0)
    payments = models.BigIntegerField(_("payments"), default=0, db_default=0)
    collected = models.BigIntegerField(_("collected"), default=0, db_default=0)
    refunds = models.BigIntegerField(_("refunds"), default=0, db_default=0)
    refunded = models.BigIntegerField(_("refunded"), default=0, db_default=0)

    class Meta:
        verbose_name = _("revenue day")
        verbose_name_plural = _("revenue days")
        constraints = [models.UniqueConstraint(fields=["day", "currency", "method", "plan_id"],
                                               name="revenue_day_once")]

    def __str__(self) -> str:
        return f"{self.day} {self.currency} {self.method or '-'} plan {self.plan_id}"
