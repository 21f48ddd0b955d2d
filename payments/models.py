from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KeyTextTransform
from django.utils.translation import gettext_lazy as _

from core.audit import AuditRow
from credits.models import CreditLedgerEntry
from subscriptions.models import Customer, Subscription
from usage.models import Meter


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", _("Open")
    PAID = "paid", _("Paid")
    VOID = "void", _("Void")
    UNCOLLECTIBLE = "uncollectible", _("Uncollectible")


class BillingReason(models.TextChoices):
    SUBSCRIPTION_CREATE = "subscription_create", _("First period of a subscription")
    SUBSCRIPTION_CYCLE = "subscription_cycle", _("Renewal")
    SUBSCRIPTION_UPDATE = "subscription_update", _("Plan change (proration)")
    MANUAL = "manual", _("Manual")
    CREDIT_PACK = "credit_pack", _("Credit pack purchase")


# Reasons that bill a whole subscription period; each period is billed at most once.
PERIOD_BILLING_REASONS = [BillingReason.SUBSCRIPTION_CREATE, BillingReason.SUBSCRIPTION_CYCLE]


class InvoiceNumberSequence(models.Model):
    """The last invoice number issued in a year, locked while the next one is taken.

    Many jurisdictions require invoice numbers without gaps, which a database sequence cannot promise
    (rolled-back transactions burn values); a locked counter row in the same transaction can.
    """

    year = models.PositiveSmallIntegerField(_("year"), primary_key=True)
    last_number = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("invoice number sequence")
        verbose_name_plural = _("invoice number sequences")

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class Invoice(models.Model):
    # Assigned at finalization (draft -> open), never before, so drafts that are thrown away leave no gap.
    # Unique through `invoice_number_unique` (Meta), an index of numbered invoices only: a draft has none, and
    # a `unique=True` field would also index every draft's NULL and add a LIKE index no lookup uses (admin
    # search is a contains, the API filter an exact match): three index entries per invoice the billing run
    # writes and numbers.
    number = models.CharField(_("number"), max_length=32, null=True, blank=True)
    # No index of its own: invoice_customer_recent (customer, -created_at) serves every lookup by customer,
    # and each index is one more entry to write per invoice (the billing run writes 100,000 at a time).
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.PROTECT, related_name="invoices", db_index=False)
    subscription = models.ForeignKey(
        Subscription, verbose_name=_("subscription"),
            null=True, blank=True, on_delete=models.PROTECT, related_name="invoices",
    )
    billing_reason = models.CharField(_("billing reason"),
        max_length=24, choices=BillingReason.choices, default=BillingReason.MANUAL)
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    currency = models.CharField(_("currency"), max_length=3)
    # All amounts in integer minor units: sums of lines stay exact.
    subtotal = models.BigIntegerField(_("subtotal"), default=0)
    total = models.BigIntegerField(_("total"), default=0)
    amount_paid = models.BigIntegerField(_("amount paid"), default=0)
    amount_due = models.BigIntegerField(_("amount due"), default=0)
    due_date = models.DateTimeField(_("due date"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    # Dunning: how many collection attempts failed, and when the next one is due.
    attempt_count = models.PositiveSmallIntegerField(_("attempt count"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # A message to the customer printed on the invoice (one-off invoices: what the charge is for). A column
    # apart from metadata, which is staff's internal note and never shown to the customer. The database
    # default too: the billing run COPYs invoices without naming this column.
    note = models.CharField(_("note"), max_length=2000, blank=True, default="", db_default="")
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-id"]
        # Staff actions in the admin beyond add/change/delete, granted per person.
        permissions = [
            ("record_manual_payment", "Can record manual payments on invoices"),
            ("void_invoice", "Can void invoices"),
            ("mark_invoice_paid", "Can mark invoices paid"),
            ("finalize_invoice", "Can finalize (issue) draft invoices"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="invoice_collection_due"),
            models.Index(fields=["customer", "-created_at"], name="invoice_customer_recent"),
            # The revenue report's first and last partial days (whole days come from RevenueDay).
            models.Index(fields=["issued_at"], name="invoice_issued_at"),
            # Receivables read only open invoices, a small share of all: an index-only scan of these.
            # (Due date and amount as key columns, not INCLUDE, which SQLite lacks.)
            models.Index(fields=["currency", "issued_at", "due_date", "amount_due"],
                         condition=Q(status="open"), name="invoice_open_receivable"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"),
            models.CheckConstraint(condition=Q(total__gte=0), name="invoice_total_non_negative"),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="invoice_amount_paid_non_negative"),
            models.CheckConstraint(condition=Q(amount_due__gte=0), name="invoice_amount_due_non_negative"),
            # A number is taken at finalization; a draft thrown away (voided before it was issued) never
            # takes one, so discarding drafts leaves no gap in the sequence.
            models.CheckConstraint(condition=Q(status="draft") | Q(status="void", issued_at__isnull=True)
                                   | Q(number__isnull=False),
                                   name="invoice_number_once_finalized"),
            models.UniqueConstraint(fields=["number"], condition=Q(number__isnull=False),
                                    name="invoice_number_unique"),
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(subscription__isnull=False, billing_reason__in=PERIOD_BILLING_REASONS),
                name="invoice_one_per_subscription_period",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft #{self.pk}"


class InvoiceLineKind(models.TextChoices):
    SUBSCRIPTION = "subscription", _("Subscription")
    USAGE = "usage", _("Usage")
    PRORATION = "proration", _("Proration")
    CREDIT_PACK = "credit_pack", _("Credit pack")
    ADJUSTMENT = "adjustment", _("Adjustment")


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, verbose_name=_("invoice"), on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(_("kind"), max_length=16, choices=InvoiceLineKind.choices)
    description = models.CharField(_("description"), max_length=300)
    quantity = models.DecimalField(_("quantity"), max_digits=20, decimal_places=6, default=1)
    # Decimal minor units: usage prices are fractional; the line amount is rounded once from it.
    unit_amount = models.DecimalField(_("unit amount"), max_digits=20, decimal_places=6)
    # Minor units; negative for credits such as unused time on a plan change.
    amount = models.BigIntegerField(_("amount"))
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    # Usage lines only: indexed where set (invoice_line_meter), the plan fee line of every renewal has none.
    meter = models.ForeignKey(Meter, verbose_name=_("meter"),
        null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              db_index=False)
    # The prepaid credits this line sells (credit pack lines only), decided by the service that bills the
    # pack and read when the invoice is paid. A column, not metadata: invoice metadata is a free note staff
    # edit in the back office, and a note must never change what a payment grants.
    credits = models.BigIntegerField(_("credits"), null=True, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["id"]
        indexes = [models.Index(fields=["meter"], name="invoice_line_meter", condition=Q(meter__isnull=False))]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=InvoiceLineKind.values), name="invoice_line_kind_valid"),
            models.CheckConstraint(condition=Q(credits__isnull=True) | Q(kind="credit_pack", credits__gt=0),
                                   name="invoice_line_credits_only_on_packs"),
            # A credit pack order is billed on at most one invoice line, whatever runs race to bill it.
            models.UniqueConstraint(KeyTextTransform("credit_pack_order", "metadata"),
                                    condition=Q(kind="credit_pack", metadata__has_key="credit_pack_order"),
                                    name="invoice_line_credit_pack_order_once"),
        ]

    def __str__(self) -> str:
        return self.description


class InvoiceStatusChange(AuditRow):
    """Append-only audit of every invoice status move."""

    invoice = models.ForeignKey(Invoice, verbose_name=_("invoice"),
        on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(_("from status"), max_length=16)
    to_status = models.CharField(_("to status"), max_length=16)

    class Meta:
        verbose_name = _("invoice status change")
        verbose_name_plural = _("invoice status changes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class PaymentMethod(models.TextChoices):
    STRIPE = "stripe", _("Stripe")
    CASH = "cash", _("Cash")
    CHECK = "check", _("Check")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    PAYPAL = "paypal", _("PayPal")
    # Paid to Lemon Squeezy, the merchant of record, which bills the customer itself; we mirror it.
    LEMONSQUEEZY = "lemonsqueezy", _("Lemon Squeezy")


MANUAL_PAYMENT_METHODS = [PaymentMethod.CASH, PaymentMethod.CHECK, PaymentMethod.BANK_TRANSFER]
# The `provider` of money that moves outside any provider's API (the manual rail's code).
MANUAL_PROVIDER = "manual"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Canceled")
    REFUNDED = "refunded", _("Refunded")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")


class Payment(models.Model):
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, verbose_name=_("invoice"),
        null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    amount = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    method = models.CharField(_("method"), max_length=16, choices=PaymentMethod.choices)
    status = models.CharField(_("status"), max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    amount_refunded = models.BigIntegerField(_("amount refunded"), default=0)
    failure_code = models.CharField(_("failure code"), max_length=100, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=500, blank=True)
    # The rail (a PAYMENT_PROVIDERS code: "manual" for cash, check and bank transfer) that holds this
    # payment's ids and answers for it; `method` says how the customer paid, this says where to ask.
    provider = models.CharField(_("provider"), max_length=32)
    # The provider's ids for the payment (a payment intent, an order) and for the charge that moved the
    # money, when it has one. Unique per provider, so a webhook or a retry maps to exactly one payment row.
    provider_payment_id = models.CharField(_("provider payment id"), max_length=255, null=True, blank=True)
    provider_charge_id = models.CharField(_("provider charge id"), max_length=255, null=True, blank=True)
    # Check number, bank reference: what finance reconciles a manual payment against.
    reference = models.CharField(_("reference"), max_length=255, blank=True)
    # What staff say the money was for when they record it by hand ("consulting day, paid in cash");
    # shown to the customer, unlike metadata. The database default too, for writers that do not name it.
    description = models.CharField(_("description"), max_length=500, blank=True, default="", db_default="")
    # `created` of the newest provider event applied; an older event arriving late is not applied.
    provider_updated_at = models.DateTimeField(_("provider updated at"), null=True, blank=True)
    # The idempotency key of the collection attempt this payment records (invoice-<id>-attempt-<n>), also
    # sent to Stripe. Unique, so two collectors racing on one attempt insert one payment, not two.
    collection_key = models.CharField(_("collection key"), max_length=64, null=True, blank=True, unique=True)
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-id"]
        # Staff actions in the admin beyond add/change/delete, granted per person.
        permissions = [("refund_payment", "Can refund payments")]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="payment_customer_recent"),
            # The revenue report's first and last partial days (whole days come from RevenueDay).
            models.Index(fields=["succeeded_at"], condition=Q(succeeded_at__isnull=False),
                         name="payment_succeeded_at"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount")),
                                   name="payment_refund_within_amount"),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"),
            models.CheckConstraint(condition=Q(method__in=PaymentMethod.values), name="payment_method_valid"),
            # Every payment names its rail: an omitted provider would store "" and be nobody's.
            models.CheckConstraint(condition=~Q(provider=""), name="payment_provider_set"),
            models.UniqueConstraint(fields=["provider", "provider_payment_id"],
                                    condition=Q(provider_payment_id__isnull=False),
                                    name="payment_provider_payment_id_unique"),
            models.UniqueConstraint(fields=["provider", "provider_charge_id"],
                                    condition=Q(provider_charge_id__isnull=False),
                                    name="payment_provider_charge_id_unique"),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} {self.amount} {self.currency} ({self.status})"

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.amount_refunded


class PaymentCreditEntry(models.Model):
    """A credit ledger entry a payment caused: the credits granted when the payment settled its invoice
    (a credit pack, a pack ordered on account, the plan's refill on activation). Append-only.

    Kept here because the ledger (credits) sits below payments and cannot point at a payment; written in
    the transaction that settles the invoice, so "what did this payment award" is a join, never a guess
    from idempotency keys."""

    payment = models.ForeignKey(Payment, verbose_name=_("payment"),
        on_delete=models.PROTECT, related_name="credit_entries")
    # One cause per ledger row: a grant is caused by at most one payment.
    entry = models.OneToOneField(CreditLedgerEntry, verbose_name=_("entry"), on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("payment credit entry")
        ordering = ["id"]
        verbose_name_plural = _("payment credit entries")

    def __str__(self) -> str:
        return f"payment {self.payment_id} -> ledger entry {self.entry_id}"


class RefundStatus(models.TextChoices):
    # Committed before the provider is asked; holds its amount until Stripe settles it.
    REQUESTED = "requested", _("Requested")
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Canceled")


class Refund(AuditRow):
    payment = models.ForeignKey(Payment, verbose_name=_("payment"), on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    # The rail that made the refund (the payment's, or "manual" when the money goes back by hand) and its
    # id for it; unique per provider, so its messages about the refund find exactly this row.
    provider = models.CharField(_("provider"), max_length=32)
    provider_refund_id = models.CharField(_("provider refund id"), max_length=255, null=True, blank=True)
    # Same key, same refund: a double-clicked admin action or a retried API call refunds once.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True, unique=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=RefundStatus.values), name="refund_status_valid"),
            models.CheckConstraint(condition=~Q(provider=""), name="refund_provider_set"),
            models.UniqueConstraint(fields=["provider", "provider_refund_id"],
                                    condition=Q(provider_refund_id__isnull=False),
                                    name="refund_provider_refund_id_unique"),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} {self.amount} {self.currency} ({self.status})"


class RefundStatusChange(AuditRow):
    """Append-only audit of every refund status move, with what the provider said."""

    refund = models.ForeignKey(Refund, verbose_name=_("refund"),
        on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(_("from status"), max_length=16)
    to_status = models.CharField(_("to status"), max_length=16)
    provider_data = models.JSONField(_("provider data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("refund status change")
        verbose_name_plural = _("refund status changes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class PaymentStatusChange(AuditRow):
    """Append-only audit of every payment status move, with what the provider said."""

    payment = models.ForeignKey(Payment, verbose_name=_("payment"),
        on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(_("from status"), max_length=20)
    to_status = models.CharField(_("to status"), max_length=20)
    provider_data = models.JSONField(_("provider data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("payment status change")
        verbose_name_plural = _("payment status changes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class CreditPackOrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending (billed on the next renewal)")
    INVOICED = "invoiced", _("Invoiced")
    FULFILLED = "fulfilled", _("Fulfilled (credits granted)")
    CANCELED = "canceled", _("Canceled")


class CreditPackOrder(models.Model):
    """A credit pack bought on account: billed as a line of the subscription's next renewal invoice and
    granted when that invoice is paid (a Checkout purchase has its own invoice instead)."""

    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.PROTECT, related_name="credit_pack_orders")
    # The CREDIT_PACKS catalog code at the time of the order; the catalog may change later, the order not.
    pack_code = models.CharField(_("pack code"), max_length=64)
    # Copied from the catalog when placed, so a later catalog change never alters what was bought.
    credits = models.BigIntegerField(_("credits"))
    # Integer minor units of `currency` (never floats), copied from the catalog when placed: the price the
    # customer accepted, even if the catalog price changes before the renewal bills it.
    amount = models.BigIntegerField(_("amount"))
    # The customer's currency when placed; the renewal bills only orders in its invoice's currency.
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=16, choices=CreditPackOrderStatus.choices,
                              default=CreditPackOrderStatus.PENDING)
    # The renewal invoice that bills the order; set once, when the order leaves pending.
    invoice = models.ForeignKey(Invoice, verbose_name=_("invoice"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="credit_pack_orders")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # SET_NULL so deleting a user never deletes an order; actor_label still says who placed it.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"),
        null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(_("actor label"), max_length=150, default="system")

    class Meta:
        verbose_name = _("credit pack order")
        verbose_name_plural = _("credit pack orders")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The renewal batch reads the pending orders of its customers in one query.
            models.Index(fields=["customer", "created_at"], condition=Q(status="pending"),
                         name="credit_pack_order_pending"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CreditPackOrderStatus.values),
                                   name="credit_pack_order_status_valid"),
            models.CheckConstraint(condition=Q(credits__gt=0), name="credit_pack_order_credits_positive"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_pack_order_amount_positive"),
            # Invoiced and fulfilled orders name their invoice; pending ones have none yet.
            models.CheckConstraint(
                condition=(Q(status__in=["pending"], invoice__isnull=True)
                           | Q(status__in=["invoiced", "fulfilled"], invoice__isnull=False)
                           | Q(status="canceled", invoice__isnull=True)),
                name="credit_pack_order_invoice_matches_status"),
        ]

    def __str__(self) -> str:
        return f"{self.pack_code} for {self.customer_id} ({self.status})"


class CreditPackOrderStatusChange(AuditRow):
    """Append-only audit of every credit pack order status move."""

    order = models.ForeignKey(CreditPackOrder, verbose_name=_("order"),
        on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(_("from status"), max_length=16)
    to_status = models.CharField(_("to status"), max_length=16)

    class Meta:
        verbose_name = _("credit pack order status change")
        verbose_name_plural = _("credit pack order status changes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


# Rows every rail shares (provider accounts, plan prices, the webhook inbox) live with the contract.
# The money rollups are models of this app, kept in their own module.
from payments.money_models import PaymentDay, RevenueDay  # noqa: E402, F401
from payments.providers.models import (  # noqa: E402, F401  (re-exported: Django loads models from here)
    ProviderAccount,
    ProviderEvent,
    ProviderEventStatus,
    ProviderPlanPrice,
    ProviderSubscription,
)
