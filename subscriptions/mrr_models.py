"""MRR rollups: the figures the MRR and churn reports read, kept in the same transaction as every change
that moves them (a plan fee invoice issued or voided, a subscription ending), so they are never stale.

They live in `subscriptions` because a subscription ending (this layer) moves them as much as an invoice
does (payments, above): each layer writes the part it owns. `manage.py billing verify` recomputes all three
from the invoice lines and subscriptions; `manage.py billing rollups-rebuild` writes them from scratch.

Months are UTC month starts: a row for month M speaks of the instant M (MRR) or of the window [M, M+1).

Their references to customers and subscriptions carry no database constraint (`db_constraint=False`): the
rows are derived from invoice lines whose own foreign keys already hold, `billing verify` compares them with
that source and `rollups-rebuild` rewrites them, and each constraint cost a deferred check per row at the
billing run's COMMIT (8 of its ~21 checks per renewal). Deleting through the ORM still cascades."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SubscriptionFeeMonth(models.Model):
    """A subscription's plan fee in force at the first instant of a month: the newest plan fee line
    (`kind=subscription`) of an issued, not voided invoice whose period covers that instant. Written by
    payments whenever such an invoice is issued or voided. Whether the subscription had ended by then is
    not applied here (the subscription's own row says so): it is applied when customer months are summed."""

    # No index of its own on either key: the unique (subscription, month) and fee_month_by_customer
    # (customer, month) lead with them, and the billing run writes a row per renewal (an index is a write).
    subscription = models.ForeignKey("subscriptions.Subscription", verbose_name=_("subscription"),
                                     on_delete=models.CASCADE,
                                     related_name="+", db_constraint=False, db_index=False)
    month = models.DateTimeField(_("month"))
    # Copied from the invoice so a customer's months are summed without joining the invoices.
    customer = models.ForeignKey("subscriptions.Customer", verbose_name=_("customer"), on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False, db_index=False)
    currency = models.CharField(_("currency"), max_length=3)
    # The line's unit amount (minor units, may be fractional) and the calendar months of its period: kept
    # apart, not divided, so the per-customer sum is rounded once exactly as the report defines it.
    unit_amount = models.DecimalField(_("unit amount"), max_digits=20, decimal_places=6)
    period_months = models.PositiveIntegerField(_("period in months"))

    class Meta:
        verbose_name = _("subscription fee month")
        verbose_name_plural = _("subscription fee months")
        constraints = [models.UniqueConstraint(fields=["subscription", "month"],
                                               name="subscription_fee_month_once")]
        indexes = [models.Index(fields=["customer", "month"], name="fee_month_by_customer")]

    def __str__(self) -> str:
        return f"subscription {self.subscription_id} fee at {self.month:%Y-%m}"


class CustomerMrrMonth(models.Model):
    """A customer's MRR at the first instant of a month, per currency: its live subscriptions' fees per
    month summed and rounded once, half-up. A row exists while some fee line covers the instant (its MRR
    may be 0: a free plan)."""

    # Indexed by the unique (customer, currency, month), which leads with it.
    customer = models.ForeignKey("subscriptions.Customer", verbose_name=_("customer"), on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False, db_index=False)
    currency = models.CharField(_("currency"), max_length=3)
    month = models.DateTimeField(_("month"))
    # Integer minor units, as every amount.
    mrr = models.BigIntegerField(_("MRR"))

    class Meta:
        verbose_name = _("customer MRR month")
        verbose_name_plural = _("customer MRR months")
        constraints = [models.UniqueConstraint(fields=["customer", "currency", "month"],
                                               name="customer_mrr_month_once")]

    def __str__(self) -> str:
        return f"customer {self.customer_id} MRR {self.mrr} {self.currency} at {self.month:%Y-%m}"


class CustomerFirstFee(models.Model):
    """When a customer's first paid plan fee period began: a customer back from zero MRR is *reactivated*
    when that is before the window, *new* otherwise."""

    customer = models.OneToOneField("subscriptions.Customer", verbose_name=_("customer"), on_delete=models.CASCADE,
                                    primary_key=True,
                                    related_name="+", db_constraint=False)
    first_paid_at = models.DateTimeField(_("first paid at"))

    class Meta:
        verbose_name = _("customer first fee")
        verbose_name_plural = _("customer first fees")

    def __str__(self) -> str:
        return f"customer {self.customer_id} first paid {self.first_paid_at:%Y-%m-%d}"


class MrrMonth(models.Model):
    """Per currency, MRR at the month's first instant and the movements of the window [month, next month):
    what the MRR and churn reports read for whole months. Adjusted by increments, in (currency, month)
    order, whenever a customer's months change."""

    currency = models.CharField(_("currency"), max_length=3)
    month = models.DateTimeField(_("month"))
    # Integer minor units.
    mrr = models.BigIntegerField(_("MRR"), default=0)
    # Customers with a covering fee line at the month's start (even of 0): a currency appears in the report
    # as soon as one does, as in the definition.
    customers_covered = models.IntegerField(_("customers covered"), default=0)
    # Customers paying more than 0 at the month's start.
    customers_paying = models.IntegerField(_("customers paying"), default=0)
    new = models.BigIntegerField(_("new"), default=0)
    expansion = models.BigIntegerField(_("expansion"), default=0)
    contraction = models.BigIntegerField(_("contraction"), default=0)
    churned = models.BigIntegerField(_("churned"), default=0)
    reactivated = models.BigIntegerField(_("reactivated"), default=0)
    # Of the customers paying at the start, those paying nothing at the window's end.
    customers_churned = models.IntegerField(_("customers churned"), default=0)

    class Meta:
        verbose_name = _("MRR month")
        verbose_name_plural = _("MRR months")
        constraints = [models.UniqueConstraint(fields=["currency", "month"], name="mrr_month_once")]

    def __str__(self) -> str:
        return f"MRR {self.mrr} {self.currency} at {self.month:%Y-%m}"


class SubscriptionFeeSpan(models.Model):
    """A stretch [start, end) of time over which a subscription's newest covering plan fee line (issued,
    not voided) asks the same fee: consecutive same-price renewals make one span. The instant-level
    counterpart of `SubscriptionFeeMonth`, written by payments with it; it exists so that a subscription
    ending (this layer, which cannot read invoice lines) can recompute its customer's `CustomerMrrChange`
    rows. Whether the subscription had ended is applied when the customer's changes are computed."""

    # Indexed by the unique (subscription, starts_at), which leads with it.
    subscription = models.ForeignKey("subscriptions.Subscription", verbose_name=_("subscription"),
                                     on_delete=models.CASCADE, related_name="+",
                                     db_constraint=False, db_index=False)
    # Copied from the invoice so a customer's spans are read without joining the invoices. Indexed once, by
    # fee_span_by_customer (the key's own index was a second copy of it).
    customer = models.ForeignKey("subscriptions.Customer", verbose_name=_("customer"), on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False, db_index=False)
    currency = models.CharField(_("currency"), max_length=3)
    # Named for what they are: `end` is a reserved word in SQL and COPY names columns bare.
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    # As in SubscriptionFeeMonth: minor units (may be fractional) and calendar months, kept undivided so the
    # customer's sum is rounded once.
    unit_amount = models.DecimalField(_("unit amount"), max_digits=20, decimal_places=6)
    period_months = models.PositiveIntegerField(_("period in months"))

    class Meta:
        verbose_name = _("subscription fee span")
        verbose_name_plural = _("subscription fee spans")
        constraints = [models.UniqueConstraint(fields=["subscription", "starts_at"], name="subscription_fee_span_once")]
        indexes = [models.Index(fields=["customer"], name="fee_span_by_customer")]

    def __str__(self) -> str:
        return f"subscription {self.subscription_id} fee from {self.starts_at:%Y-%m-%d %H:%M}"


class CustomerMrrChange(models.Model):
    """An instant at which a customer's MRR in a currency (or whether any fee line covers it) changes: MRR
    is a step function of time, constant between these rows, so MRR at any instant t is the month start's
    `CustomerMrrMonth` (or `MrrMonth` for a currency's total) plus the changes in (month start, t]. A
    same-price renewal is no change. What a range starting or ending inside a month is answered from."""

    # Indexed by the unique (customer, currency, changed_at), which leads with it.
    customer = models.ForeignKey("subscriptions.Customer", verbose_name=_("customer"), on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False, db_index=False)
    currency = models.CharField(_("currency"), max_length=3)
    # From this instant on (a fee line covers [start, end)), the values `after` hold.
    changed_at = models.DateTimeField(_("changed at"))
    # Integer minor units, rounded once per customer as the definition says: before is the value just
    # before `at`, so consecutive rows chain (one's after is the next one's before) and sums telescope.
    mrr_before = models.BigIntegerField(_("MRR before"))
    mrr_after = models.BigIntegerField(_("MRR after"))
    # Whether some fee line (even of 0) covered the customer: a currency shows in the report when one does.
    covered_before = models.BooleanField(_("covered before"))
    covered_after = models.BooleanField(_("covered after"))

    class Meta:
        verbose_name = _("customer MRR change")
        verbose_name_plural = _("customer MRR changes")
        constraints = [models.UniqueConstraint(fields=["customer", "currency", "changed_at"],
                                               name="customer_mrr_change_once")]
        # The partial-month reports read a few days of changes of every customer.
        indexes = [models.Index(fields=["changed_at", "currency"], name="mrr_change_by_instant")]

    def __str__(self) -> str:
        return (f"customer {self.customer_id} MRR {self.mrr_before} -> {self.mrr_after} {self.currency} "
                f"at {self.changed_at}")
