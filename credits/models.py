from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import GreaterThan
from django.utils.translation import gettext_lazy as _

from core.audit import AuditRow
from subscriptions.models import Customer


class CreditBalance(models.Model):
    """One row per customer that every credit write locks first.

    Locking this row (not the grants) serialises writers of one customer, so two concurrent debits
    can never both see the same credits. The balance equals the sum of the ledger and is checked by
    `manage.py billing verify`.
    """

    customer = models.OneToOneField(Customer, verbose_name=_("customer"),
        primary_key=True, on_delete=models.PROTECT, related_name="credit_balance")
    balance = models.BigIntegerField(_("balance"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("credit balance")
        verbose_name_plural = _("credit balances")
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="credit_balance_non_negative")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.balance}"


class CreditSource(models.TextChoices):
    PLAN_REFILL = "plan_refill", _("Plan refill")
    PURCHASE = "purchase", _("Purchase")
    PROMOTION = "promotion", _("Promotion")
    ADJUSTMENT = "adjustment", _("Adjustment")


# Lower numbers are spent first. Purchased and granted credits default to 100; a plan's periodic refill
# goes before them (it expires with its period unless the plan rolls credits over), and staff may put a
# promotion at 0 to spend it first of all.
DEFAULT_GRANT_PRIORITY = 100
PLAN_REFILL_PRIORITY = 50


class CreditGrant(models.Model):
    """A bucket of credits. `remaining` is what debits have not yet taken from it."""

    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.PROTECT, related_name="credit_grants")
    amount = models.BigIntegerField(_("amount"))
    remaining = models.BigIntegerField(_("remaining"))
    # Whether credits are left, computed by the database. The consumption-order and expiry indexes are partial
    # on this column, not on `remaining`: PostgreSQL counts a partial index's predicate columns as indexed, so
    # with `remaining > 0` as the predicate every debit's UPDATE of `remaining` was a non-HOT update (a new
    # row version on another page and one new entry in each of the four indexes; a hot customer's grant
    # bloated by thousands of versions between vacuums). With this column the UPDATE changes no indexed value
    # until it empties the grant, and stays on its page (docs/decisions.md, "Grant updates stay HOT").
    spendable = models.GeneratedField(expression=GreaterThan(F("remaining"), 0), output_field=models.BooleanField(),
                                      db_persist=True, verbose_name=_("spendable"))
    priority = models.PositiveSmallIntegerField(_("priority"), default=DEFAULT_GRANT_PRIORITY)
    source = models.CharField(_("source"), max_length=16, choices=CreditSource.choices)
    effective_at = models.DateTimeField(_("effective at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # Set when the expiry ledger row is written, so expiry runs once per grant.
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("credit grant")
        verbose_name_plural = _("credit grants")
        ordering = ["priority", models.F("expires_at").asc(nulls_last=True), "created_at", "id"]
        # Staff actions in the admin beyond add/change/delete, granted per person.
        permissions = [("grant_credits", "Can grant credits to customers")]
        indexes = [
            models.Index(fields=["customer", "priority", "expires_at", "id"], name="grant_consumption_order",
                         condition=Q(spendable=True)),
            models.Index(fields=["expires_at"], name="grant_expiry_due", condition=Q(spendable=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="grant_amount_positive"),
            models.CheckConstraint(condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("amount")),
                                   name="grant_remaining_within_amount"),
            models.CheckConstraint(condition=Q(source__in=CreditSource.values), name="grant_source_valid"),
            models.CheckConstraint(condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("effective_at")),
                                   name="grant_expiry_after_effective"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.remaining}/{self.amount}"


class LedgerKind(models.TextChoices):
    GRANT = "grant", _("Grant")
    DEBIT = "debit", _("Debit")
    EXPIRY = "expiry", _("Expiry")
    REFUND = "refund", _("Refund")
    ADJUSTMENT = "adjustment", _("Adjustment")


class CreditLedgerEntry(AuditRow):
    """Append-only: every change to a customer's credits, with the balance it left behind."""

    # No index of its own: ledger_customer_recent (customer, -id) serves every lookup by customer, and
    # each index is one more entry to write per ledger row (the billing run writes one per refill).
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.PROTECT, related_name="credit_ledger", db_index=False)
    kind = models.CharField(_("kind"), max_length=16, choices=LedgerKind.choices)
    # Signed: grants and refunds add, debits and expiries subtract, so SUM(amount) is the balance.
    amount = models.BigIntegerField(_("amount"))
    balance_after = models.BigIntegerField(_("balance after"))
    # The grant a grant or expiry row concerns; debits spread over grants are in the allocations.
    grant = models.ForeignKey(
        CreditGrant, verbose_name=_("grant"),
            null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries",
    )
    # Lets an API client or the billing run repeat a write without doing it twice.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True)

    class Meta:
        verbose_name = _("credit ledger entry")
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("credit ledger entries")
        indexes = [models.Index(fields=["customer", "-id"], name="ledger_customer_recent")]
        constraints = [
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_non_negative"),
            models.CheckConstraint(condition=Q(kind__in=LedgerKind.values), name="ledger_kind_valid"),
            models.CheckConstraint(
                condition=(Q(kind__in=["grant", "refund"], amount__gt=0)
                           | Q(kind__in=["debit", "expiry"], amount__lt=0)
                           | Q(kind="adjustment")),
                name="ledger_amount_sign_matches_kind",
            ),
            models.UniqueConstraint(fields=["customer", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="ledger_idempotency_key_per_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} -> {self.balance_after}"


class CreditAllocation(models.Model):
    """How much of one ledger row came out of (or went back into) one grant; append-only.

    A debit can span several grants; these rows let `verify` recompute every grant's remaining.
    """

    entry = models.ForeignKey(CreditLedgerEntry, verbose_name=_("entry"),
        on_delete=models.PROTECT, related_name="allocations")
    grant = models.ForeignKey(CreditGrant, verbose_name=_("grant"),
        on_delete=models.PROTECT, related_name="allocations")
    # Signed like the entry: negative when credits left the grant.
    amount = models.BigIntegerField(_("amount"))

    class Meta:
        verbose_name = _("credit allocation")
        verbose_name_plural = _("credit allocations")
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="allocation_non_zero")]

    def __str__(self) -> str:
        return f"entry {self.entry_id} grant {self.grant_id}: {self.amount:+d}"


# The credits report's rollup is a model of this app, kept in its own module.
from credits.report_models import CreditLedgerDay  # noqa: E402, F401
