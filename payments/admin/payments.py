"""Payments, refunds and their status history. Payments are recorded and refunded through the services
only; their status moves are the read-only PaymentStatusChange and RefundStatusChange trails."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin_tools import (
    ActionForm,
    ReadOnlyAdminMixin,
    RecentRowsInline,
    action_form_bind,
    action_form_response,
    csv_export_action,
    minor_units,
    money,
    money_column,
    run_for_each,
)
from core.audit import Actor
from payments.models import Payment, PaymentCreditEntry, PaymentStatusChange, Refund, RefundStatusChange
from payments.selectors import PAYMENT_EXPORT, REFUND_EXPORT, payment_credit_pack_orders
from payments.services import payment_refund


def payment_status_badge(payment: Payment) -> str:
    # The live-update script finds badges by data-payment-id and swaps the status-* class and label:
    # keep this markup exactly as it is.
    return format_html('<span class="payment-status-badge status-{}" data-payment-id="{}">{}</span>',
                       payment.status, payment.pk, payment.get_status_display())


class RecentPaymentsInline(RecentRowsInline):
    """A parent's most recent payments (an invoice's, a customer's), each with its amount and live status badge."""

    model = Payment

    payment_amount = money_column("amount", description=_("Amount"))

    @admin.display(description=_("Status"))
    def status_badge(self, obj: Payment) -> str:
        return payment_status_badge(obj)


class PaymentStatusChangeInline(RecentRowsInline):
    model = PaymentStatusChange
    recent_partition_by = "payment"
    recent_limit = 25
    fields = ("created_at", "from_status", "to_status", "actor_label", "reason", "provider_data")
    readonly_fields = fields
    verbose_name_plural = _("Status changes (most recent)")


class RefundInline(RecentRowsInline):
    model = Refund
    recent_partition_by = "payment"
    recent_limit = 25
    fields = ("created_at", "refund_amount", "status", "provider", "provider_refund_id", "actor_label", "reason")
    readonly_fields = fields

    refund_amount = money_column("amount", description=_("Amount"))


class RefundForm(ActionForm):
    amount = forms.DecimalField(
        required=False, min_value=0, decimal_places=3, max_digits=18,
        help_text=_("In the payment's currency, e.g. 4.50. Leave empty to refund everything not yet refunded."),
    )
    reason = forms.CharField(max_length=500, help_text=_("Written to the refund and the payment's history."))


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "invoice", "payment_amount", "refunded", "method", "status_badge",
                    "reference", "created_at", "succeeded_at")
    list_filter = ("status", "method", "provider", "currency")
    search_fields = ("customer__name", "customer__name_ar",
                     "customer__email", "customer__external_id", "invoice__number", "reference",
                     "provider_payment_id", "provider_charge_id")
    date_hierarchy = "created_at"
    list_select_related = ("customer", "invoice")
    fieldsets = (
        (None, {"fields": ("customer", "invoice", "method", "status_badge", "reference", "description")}),
        (_("Amounts"), {"fields": ("payment_amount", "refunded")}),
        (_("What it paid for"), {"fields": ("paid_for", "credits_awarded")}),
        (_("Failure"), {"fields": ("failure_code", "failure_reason")}),
        (_("Provider"), {"fields": ("provider", "provider_payment_id", "provider_charge_id", "provider_updated_at")}),
        (_("Metadata"), {"fields": ("metadata",), "classes": ("collapse",)}),
        (_("History"), {"fields": ("created_at", "succeeded_at", "updated_at")}),
    )
    # The reference (check number, bank reference) and metadata are notes for finance; everything
    # else, the status above all, moves only through the services, which write the audit rows.
    readonly_fields = ("customer", "invoice", "method", "status", "status_badge", "payment_amount", "refunded",
                       "description", "paid_for", "credits_awarded",
                       "failure_code", "failure_reason", "provider", "provider_payment_id", "provider_charge_id",
                       "provider_updated_at", "created_at", "succeeded_at", "updated_at")
    inlines = [PaymentStatusChangeInline, RefundInline]
    actions = ["refund", csv_export_action(PAYMENT_EXPORT)]

    def has_add_permission(self, request):
        # Manual payments are recorded on their invoice ("Record manual payment") or through the API; the
        # others come from their provider.
        return False

    @admin.display(description=_("Paid for"))
    def paid_for(self, obj: Payment) -> str:
        if obj.invoice_id is None:
            return "Nothing billed: money received on account."
        invoice = obj.invoice
        lines = format_html_join("", "<li>{} &times; {}: {}</li>", (
            (line.description, line.quantity.normalize(), money(line.amount, invoice.currency))
            for line in invoice.lines.all()))
        orders = format_html_join("", '<li>credit pack <a href="{}">{}</a> ({} credits, {})</li>', (
            (reverse("admin:payments_creditpackorder_change", args=[order.pk]), order.pack_code, order.credits,
             order.get_status_display()) for order in payment_credit_pack_orders(payment=obj)))
        return format_html('Invoice <a href="{}">{}</a> ({}, total {})<ul>{}{}</ul>',
                           reverse("admin:payments_invoice_change", args=[invoice.pk]), invoice,
                           invoice.get_status_display(), money(invoice.total, invoice.currency), lines, orders)

    @admin.display(description=_("Credits awarded"))
    def credits_awarded(self, obj: Payment) -> str:
        rows = format_html_join("", '<li><a href="{}">{} {} credits</a>, balance after {}: {}</li>', (
            (reverse("admin:credits_creditledgerentry_change", args=[link.entry.pk]), link.entry.get_kind_display(),
             f"{link.entry.amount:+d}", link.entry.balance_after, link.entry.reason)
            for link in obj.credit_entries.select_related("entry")))
        return format_html("<ul>{}</ul>", rows) if rows else "None"

    def has_delete_permission(self, request, obj=None):
        return False

    def has_refund_payment_permission(self, request) -> bool:
        return request.user.has_perm("payments.refund_payment")

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj: Payment) -> str:
        return payment_status_badge(obj)

    payment_amount = money_column("amount", description=_("Amount"), ordering="amount")
    refunded = money_column("amount_refunded", description=_("Refunded"), ordering="amount_refunded")

    @admin.action(description=_("Refund"), permissions=["refund_payment"])
    def refund(self, request, queryset):
        form = action_form_bind(request, RefundForm)
        if not form.is_bound or not form.is_valid():
            return action_form_response(self, request, queryset, form=form, action="refund", title=_("Refund payments"),
                                        submit_label=_("Refund"),
                                        help_text=_("Manual payments are refunded at once; the money goes "
                                                    "back by hand."))
        amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
        actor = Actor.of_user(request.user)

        def refund_one(payment: Payment) -> Refund:
            return payment_refund(
                payment=payment, actor=actor, reason=reason,
                amount=None if amount is None else minor_units(amount, payment.currency),
                idempotency_key=form.idempotency_key("refund", payment),
            )

        run_for_each(self, request, queryset, refund_one, done=_("Refunded {count} payment(s)."))
        return None


class RefundStatusChangeInline(RecentRowsInline):
    model = RefundStatusChange
    recent_partition_by = "refund"
    recent_limit = 25
    fields = ("created_at", "from_status", "to_status", "actor_label", "reason", "provider_data")
    readonly_fields = fields
    verbose_name_plural = _("Status changes (most recent)")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "payment", "refund_amount", "status", "provider", "provider_refund_id", "actor_label",
                    "reason", "created_at")
    list_filter = ("status", "provider", "currency")
    search_fields = ("payment__customer__name", "payment__customer__name_ar",
                     "payment__customer__email", "provider_refund_id", "reason",
                     "idempotency_key")
    date_hierarchy = "created_at"
    list_select_related = ("payment",)
    inlines = [RefundStatusChangeInline]
    actions = [csv_export_action(REFUND_EXPORT)]

    refund_amount = money_column("amount", description=_("Amount"), ordering="amount")


@admin.register(RefundStatusChange)
class RefundStatusChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "refund", "from_status", "to_status", "actor_label", "reason")
    list_filter = ("to_status", "from_status")
    search_fields = ("refund__payment__customer__email", "refund__provider_refund_id", "reason", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("refund",)
    show_full_result_count = False


@admin.register(PaymentStatusChange)
class PaymentStatusChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "payment", "from_status", "to_status", "actor_label", "reason")
    list_filter = ("to_status", "from_status")
    search_fields = ("payment__customer__name", "payment__customer__name_ar",
                     "payment__customer__email", "payment__provider_payment_id",
                     "reason", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("payment",)
    show_full_result_count = False


@admin.register(PaymentCreditEntry)
class PaymentCreditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which payment caused which credit ledger entry; read on the payment's page ("Credits awarded")."""

    list_display = ("id", "payment", "entry")
    search_fields = ("payment__customer__name", "payment__customer__name_ar",
                     "payment__customer__email", "payment__reference")
    list_select_related = ("payment", "entry")
    show_full_result_count = False
