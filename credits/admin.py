"""Back office for prepaid credits: balances, grants and the append-only ledger (all read-only), and
the "grant credits" action on customers, which calls credits.services.credit_grant."""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin_tools import (
    ActionForm,
    ReadOnlyAdminMixin,
    ReadOnlyTabularInline,
    action_form_bind,
    action_form_response,
    csv_export_action,
    run_for_each,
)
from core.audit import Actor
from core.safe_input import BIGINT_MAX
from credits.models import (
    DEFAULT_GRANT_PRIORITY,
    PLAN_REFILL_PRIORITY,
    CreditAllocation,
    CreditBalance,
    CreditGrant,
    CreditLedgerEntry,
    CreditSource,
)
from credits.selectors import CREDIT_LEDGER_EXPORT, credit_account_totals
from credits.services import credit_grant
from subscriptions.admin import CustomerAdmin
from subscriptions.models import Customer


class HasCreditsFilter(admin.SimpleListFilter):
    title = _("credits")
    parameter_name = "has_credits"

    def lookups(self, request, model_admin):
        return (("yes", "Has credits"), ("no", "No credits"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(balance__gt=0)
        if self.value() == "no":
            return queryset.filter(balance=0)
        return queryset


@admin.register(CreditBalance)
class CreditBalanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("customer", "balance", "updated_at")
    list_filter = (HasCreditsFilter,)
    search_fields = ("customer__name", "customer__name_ar", "customer__email", "customer__external_id")
    date_hierarchy = "updated_at"
    list_select_related = ("customer",)


class GrantAllocationInline(ReadOnlyTabularInline):
    model = CreditAllocation
    fields = ("entry", "amount")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("entry")


class GrantExpiryFilter(admin.SimpleListFilter):
    title = _("expiry")
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return (("never", "Never expires"), ("expires", "Expires"), ("expired", "Expired"))

    def queryset(self, request, queryset):
        if self.value() == "never":
            return queryset.filter(expires_at__isnull=True)
        if self.value() == "expires":
            return queryset.filter(expires_at__isnull=False, expired_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(expired_at__isnull=False)
        return queryset


@admin.register(CreditGrant)
class CreditGrantAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "source", "amount", "remaining", "priority", "effective_at", "expires_at",
                    "expired_at", "description")
    list_filter = ("source", GrantExpiryFilter, "priority")
    search_fields = ("customer__name", "customer__name_ar", "customer__email", "description")
    date_hierarchy = "created_at"
    list_select_related = ("customer",)
    fieldsets = (
        (None, {"fields": ("customer", "source", "description")}),
        (_("Credits"), {"fields": ("amount", "remaining", "priority")}),
        (_("Validity"), {"fields": ("effective_at", "expires_at", "expired_at", "created_at")}),
    )
    # `remaining` is derived from the ledger's allocations and `billing verify` checks it: only the
    # description, a note for people, may be edited. Grants are made with the customer action.
    readonly_fields = ("customer", "source", "amount", "remaining", "priority", "effective_at", "expires_at",
                       "expired_at", "created_at")
    inlines = [GrantAllocationInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EntryAllocationInline(ReadOnlyTabularInline):
    model = CreditAllocation
    fields = ("grant", "amount")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("grant")


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "customer", "kind", "amount", "balance_after", "grant", "actor_label", "reason")
    list_filter = ("kind",)
    search_fields = ("customer__name", "customer__name_ar",
                     "customer__email", "reason", "idempotency_key", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("customer", "grant")
    show_full_result_count = False
    inlines = [EntryAllocationInline]
    actions = [csv_export_action(CREDIT_LEDGER_EXPORT)]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "grant", "actor")


@admin.register(CreditAllocation)
class CreditAllocationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "entry", "grant", "amount", "customer")
    list_filter = ("entry__kind", "grant__source")
    search_fields = ("entry__customer__name", "entry__customer__name_ar", "entry__customer__email", "entry__reason")
    date_hierarchy = "entry__created_at"
    list_select_related = ("entry__customer", "grant")
    show_full_result_count = False

    @admin.display(description=_("Customer"), ordering="entry__customer__name")
    def customer(self, obj: CreditAllocation) -> Customer:
        return obj.entry.customer


class CustomerCreditBalanceInline(ReadOnlyTabularInline):
    model = CreditBalance
    fields = ("balance", "updated_at")
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = _("Credit balance")


class GrantCreditsForm(ActionForm):
    amount = forms.IntegerField(min_value=1, max_value=BIGINT_MAX,
                                help_text=_("Credits to add to each selected customer."))
    source = forms.ChoiceField(choices=CreditSource.choices, initial=CreditSource.ADJUSTMENT)
    priority = forms.IntegerField(min_value=0, max_value=32767, initial=DEFAULT_GRANT_PRIORITY,
                                  help_text=f"Lower numbers are spent first (plan refills use {PLAN_REFILL_PRIORITY}).")
    expires_at = forms.SplitDateTimeField(required=False, widget=AdminSplitDateTime,
                                          help_text=_("Leave empty for credits that never expire."))
    reason = forms.CharField(max_length=500, help_text=_("Written to the ledger with your name."))


class CreditsCustomerAdmin(CustomerAdmin):
    """The customer page with its credit balance, and the grant credits action."""

    list_display = (*CustomerAdmin.list_display, "credits")
    list_select_related = ("credit_balance",)
    inlines = [*CustomerAdmin.inlines, CustomerCreditBalanceInline]
    actions = ["grant_credits"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        return [*fieldsets, (_("Credit account"), {"fields": ("credit_account",)})] if obj is not None else fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "credit_account"]

    @admin.display(description=_("Totals"))
    def credit_account(self, obj: Customer) -> str:
        totals = credit_account_totals(customer=obj)
        refill = totals.next_refill
        rows = [("Balance", totals.balance), ("Purchased", totals.purchased), ("Granted", totals.granted),
                ("Used", totals.used), ("Expired", totals.expired), ("Adjusted", totals.adjusted),
                ("Used this period", totals.used_this_period),
                ("Next refill", f"{refill.credits} on {refill.at:%Y-%m-%d %H:%M} UTC" if refill else "none")]
        return format_html('<table class="credit-account">{}</table>',
                           format_html_join("", "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", rows))

    @admin.display(description=_("Credits"), ordering="credit_balance__balance")
    def credits(self, obj: Customer) -> int:
        balance = getattr(obj, "credit_balance", None)
        return balance.balance if balance is not None else 0

    def has_grant_credits_permission(self, request) -> bool:
        return request.user.has_perm("credits.grant_credits")

    @admin.action(description=_("Grant credits"), permissions=["grant_credits"])
    def grant_credits(self, request, queryset):
        form = action_form_bind(request, GrantCreditsForm)
        if not form.is_bound or not form.is_valid():
            return action_form_response(self, request, queryset, form=form, action="grant_credits",
                                        title=_("Grant credits"), submit_label=_("Grant credits"))
        data = form.cleaned_data
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda customer: credit_grant(
            customer=customer, amount=data["amount"], source=data["source"], priority=data["priority"],
            expires_at=data["expires_at"], reason=data["reason"], actor=actor,
            idempotency_key=form.idempotency_key("grant", customer),
        ), done=f"Granted {data['amount']} credits to {{count}} customer(s).")
        return None


admin.site.unregister(Customer)
admin.site.register(Customer, CreditsCustomerAdmin)
