"""Invoices, their lines and status history, and the gapless number counters.

An invoice's amounts are derived from its lines and payments, and its status moves only through the
services: the actions below call them (finalize, record a manual payment, void, mark paid). Staff add
one-off invoices (payments/admin/one_off_invoices.py); the billing services draft all the others.
"""

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin_tools import (
    ActionForm,
    ReadOnlyAdminMixin,
    ReadOnlyTabularInline,
    RecentRowsInline,
    action_form_bind,
    action_form_response,
    csv_export_action,
    live_status_badge,
    minor_units,
    money_column,
    run_for_each,
)
from core.audit import Actor
from core.money import to_major
from payments.admin.one_off_invoices import OneOffInvoiceForm, OneOffLineInline, one_off_invoice_save
from payments.admin.payments import RecentPaymentsInline
from payments.models import (
    MANUAL_PAYMENT_METHODS,
    Invoice,
    InvoiceLine,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceStatusChange,
    Payment,
    PaymentMethod,
)
from payments.providers.manual.services import payment_record_manual
from payments.selectors import INVOICE_EXPORT
from payments.services import invoice_finalize, invoice_mark_paid, invoice_void


def invoice_print_path(invoice: Invoice) -> str:
    # A plain path: the printable view is added by another branch and has no URL name to reverse yet.
    return f"/invoices/{invoice.pk}/print/"


class InvoiceLineInline(ReadOnlyTabularInline):
    model = InvoiceLine
    fields = ("kind", "description", "quantity", "unit_amount", "line_amount", "period_start", "period_end")
    readonly_fields = fields
    show_change_link = False

    line_amount = money_column("amount", description=_("Amount"), currency="invoice.currency")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")


class InvoicePaymentInline(RecentPaymentsInline):
    recent_partition_by = "invoice"
    recent_limit = 25
    fields = ("created_at", "payment_amount", "method", "status_badge", "reference", "succeeded_at")
    readonly_fields = fields


class InvoiceStatusChangeInline(RecentRowsInline):
    model = InvoiceStatusChange
    recent_partition_by = "invoice"
    recent_limit = 25
    fields = ("created_at", "from_status", "to_status", "actor_label", "reason")
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = _("Status changes (most recent)")


class PastDueFilter(admin.SimpleListFilter):
    title = _("collection")
    parameter_name = "collection"

    def lookups(self, request, model_admin):
        return (("past_due", "Open and past due"),)

    def queryset(self, request, queryset):
        if self.value() == "past_due":
            return queryset.filter(status=InvoiceStatus.OPEN, due_date__lt=timezone.now())
        return queryset


class ManualPaymentForm(ActionForm):
    method = forms.ChoiceField(choices=[(m.value, m.label) for m in MANUAL_PAYMENT_METHODS],
                               initial=PaymentMethod.BANK_TRANSFER)
    amount = forms.DecimalField(
        required=False, min_value=0, decimal_places=3, max_digits=18,
        help_text=_("In the invoice's currency, e.g. 9.99. Leave empty to pay each invoice's amount due."),
    )
    reference = forms.CharField(max_length=255, required=False, help_text=_("Check number, bank reference."))


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("invoice_label", "customer", "status_badge", "billing_reason", "invoice_total",
                    "invoice_amount_due",
                    "due_date", "issued_at", "print_link")
    list_filter = ("status", PastDueFilter, "billing_reason", "currency")
    search_fields = ("number", "customer__name", "customer__name_ar", "customer__email", "customer__external_id")
    date_hierarchy = "created_at"
    list_select_related = ("customer",)
    fieldsets = (
        (None, {"fields": ("number", "customer", "subscription", "status_badge", "billing_reason", "print_link",
                           "note")}),
        (_("Amounts"), {"fields": ("invoice_subtotal", "invoice_total", "invoice_amount_paid", "invoice_amount_due")}),
        (_("Period"), {"fields": ("period_start", "period_end")}),
        (_("Dates"), {"fields": ("issued_at", "due_date", "paid_at", "voided_at")}),
        (_("Collection"), {"fields": ("attempt_count", "next_attempt_at")}),
        (_("Metadata"), {"fields": ("metadata",), "classes": ("collapse",)}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )
    # Amounts follow from the lines and payments and the status moves only through the services
    # (which write the audit rows); only metadata is a free note.
    readonly_fields = ("number", "customer", "subscription", "status_badge", "billing_reason", "print_link", "note",
                       "invoice_subtotal", "invoice_total", "invoice_amount_paid", "invoice_amount_due",
                       "period_start", "period_end", "issued_at", "due_date", "paid_at", "voided_at",
                       "attempt_count", "next_attempt_at", "created_at", "updated_at")
    inlines = [InvoiceLineInline, InvoicePaymentInline, InvoiceStatusChangeInline]
    actions = ["finalize", "record_manual_payment", "void", "mark_paid", csv_export_action(INVOICE_EXPORT)]
    # The add page: a one-off invoice, created whole by the service (save_model and save_related below).
    add_form = OneOffInvoiceForm
    add_fieldsets = ((None, {"fields": ("customer", "note")}),)
    autocomplete_fields = ("customer",)

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj: Invoice) -> str:
        # Kept current by the live `invoices` topic (templates/admin/live/badges.js.html).
        return live_status_badge(topic="invoices", obj=obj)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "subscription__customer",
                                                            "subscription__plan")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else super().get_readonly_fields(request, obj)

    def get_inlines(self, request, obj):
        return [OneOffLineInline] if obj is None else super().get_inlines(request, obj)

    def save_model(self, request, obj, form, change):
        if change:  # only metadata is editable on an existing invoice
            super().save_model(request, obj, form, change)
        # Added invoices are created with their lines in save_related, which has the lines.

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)
        else:
            one_off_invoice_save(form=form, formsets=formsets)

    def has_add_permission(self, request):
        # Staff add one-off invoices; the billing services draft and number all the others.
        return request.user.has_perm("payments.add_invoice")

    def has_finalize_invoice_permission(self, request) -> bool:
        return request.user.has_perm("payments.finalize_invoice")

    def has_delete_permission(self, request, obj=None):
        return False

    def has_record_manual_payment_permission(self, request) -> bool:
        return request.user.has_perm("payments.record_manual_payment")

    def has_void_invoice_permission(self, request) -> bool:
        return request.user.has_perm("payments.void_invoice")

    def has_mark_invoice_paid_permission(self, request) -> bool:
        return request.user.has_perm("payments.mark_invoice_paid")

    @admin.display(description=_("Invoice"), ordering="number")
    def invoice_label(self, obj: Invoice) -> str:
        return str(obj)

    @admin.display(description=_("Print"))
    def print_link(self, obj: Invoice) -> str:
        return format_html('<a href="{}" target="_blank" rel="noopener">Print</a>', invoice_print_path(obj))

    invoice_subtotal = money_column("subtotal", description=_("Subtotal"), ordering="subtotal")
    invoice_total = money_column("total", description=_("Total"), ordering="total")
    invoice_amount_paid = money_column("amount_paid", description=_("Amount paid"), ordering="amount_paid")
    invoice_amount_due = money_column("amount_due", description=_("Amount due"), ordering="amount_due")

    @admin.action(description=_("Record manual payment"), permissions=["record_manual_payment"])
    def record_manual_payment(self, request, queryset):
        only = queryset.first() if queryset.count() == 1 else None
        initial = {"amount": to_major(only.amount_due, only.currency)} if only is not None else {}
        form = action_form_bind(request, ManualPaymentForm, initial=initial)
        if not form.is_bound or not form.is_valid():
            return action_form_response(
                self, request, queryset, form=form, action="record_manual_payment",
                title=_("Record manual payment"), submit_label=_("Record payment"),
                help_text=_("Money received outside any payment provider, recorded as succeeded against each open "
                            "invoice."),
            )
        data = form.cleaned_data
        actor = Actor.of_user(request.user)

        def record(invoice: Invoice) -> Payment:
            amount = invoice.amount_due if data["amount"] is None else minor_units(data["amount"], invoice.currency)
            return payment_record_manual(customer=invoice.customer, invoice=invoice, amount=amount,
                                         method=data["method"], reference=data["reference"], actor=actor,
                                         reason=f"{data['method']} recorded by staff in the back office")

        run_for_each(self, request, queryset, record, done=_("Recorded a payment on {count} invoice(s)."))
        return None

    @admin.action(description=_("Finalize (issue) drafts"), permissions=["finalize_invoice"])
    def finalize(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda invoice: invoice_finalize(invoice=invoice, actor=actor),
                     done=_("Finalized {count} invoice(s)."))

    @admin.action(description=_("Void"), permissions=["void_invoice"])
    def void(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda invoice: invoice_void(
            invoice=invoice, actor=actor, reason="voided by staff in the back office",
        ), done=_("Voided {count} invoice(s)."))

    @admin.action(description=_("Mark paid"), permissions=["mark_invoice_paid"])
    def mark_paid(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda invoice: invoice_mark_paid(
            invoice=invoice, actor=actor, reason="marked paid by staff in the back office",
        ), done=_("Marked {count} invoice(s) paid."))


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("invoice", "kind", "description", "quantity", "unit_amount", "line_amount", "period_start",
                    "period_end")
    list_filter = ("kind",)
    search_fields = ("invoice__number", "description", "invoice__customer__email")
    date_hierarchy = "period_start"
    list_select_related = ("invoice",)
    show_full_result_count = False

    line_amount = money_column("amount", description=_("Amount"), ordering="amount", currency="invoice.currency")


@admin.register(InvoiceStatusChange)
class InvoiceStatusChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "invoice", "from_status", "to_status", "actor_label", "reason")
    list_filter = ("to_status", "from_status")
    search_fields = ("invoice__number", "invoice__customer__email", "reason", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("invoice",)
    show_full_result_count = False


@admin.register(InvoiceNumberSequence)
class InvoiceNumberSequenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: moving a counter by hand would leave a gap or issue a number twice."""

    list_display = ("year", "last_number")
    search_fields = ("year",)
    ordering = ("-year",)
