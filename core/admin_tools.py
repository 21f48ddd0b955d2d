"""Building blocks shared by the apps' admin modules.

Read-only registrations for ledgers and audit trails, inlines limited to a parent's newest rows, and
actions that call a service once per selected object. Business rules stay in the services: these
helpers only turn their domain errors into admin messages.
"""

import uuid
from collections.abc import Callable
from decimal import Decimal
from operator import attrgetter

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import F, Model, QuerySet, Window
from django.db.models.functions import RowNumber
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import get_language_bidi
from django.utils.translation import gettext_lazy as _

from core.exceptions import BillingError, InvalidOperation
from core.exports import csv_export_response
from core.money import format_money, to_minor


class ReadOnlyAdminMixin:
    """For rows that are history (ledgers, audit trails, webhook inbox): staff may look, never add,
    edit or delete, because balances and audits are derived from these rows as they were written."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


class RecentRowsInline(ReadOnlyTabularInline):
    """Shows only the parent's newest `recent_limit` rows, so a customer with years of history still
    opens in one page.

    Slicing the inline's queryset would break the admin: the formset filters it by the parent after
    `get_queryset`, and a sliced queryset cannot be filtered. Instead each row is ranked within its
    parent by a window function and the rank is filtered, which leaves the queryset filterable;
    PostgreSQL computes the rank only over the parent's rows because the parent filter is pushed inside.
    """

    recent_limit = 10
    # The foreign key to the parent, which the ranking is partitioned by.
    recent_partition_by = ""
    recent_order_by: tuple[str, ...] = ("-created_at", "-id")

    def get_queryset(self, request):
        order = [F(name[1:]).desc() if name.startswith("-") else F(name).asc() for name in self.recent_order_by]
        ranked = super().get_queryset(request).annotate(
            recent_rank=Window(RowNumber(), partition_by=[F(self.recent_partition_by)], order_by=order),
        )
        return ranked.filter(recent_rank__lte=self.recent_limit).order_by(*self.recent_order_by)


def money(amount: int | None, currency: str) -> str:
    """An amount for an admin page; in a right-to-left language kept one left-to-right unit (<bdi>)."""
    if amount is None:
        return ""
    text = format_money(amount, currency)
    return format_html('<bdi class="money" dir="ltr">{}</bdi>', text) if get_language_bidi() else text


def money_column(field: str, *, description: str, ordering: str | None = None,
                 currency: str = "currency") -> Callable[[admin.ModelAdmin, Model], str]:
    """An admin column (list_display, readonly_fields) showing a minor-units field in its row's currency.
    `currency` may follow a relation ("invoice.currency"); `ordering` makes the column sortable."""
    amount_of, currency_of = attrgetter(field), attrgetter(currency)

    @admin.display(description=description, ordering=ordering)
    def column(modeladmin: admin.ModelAdmin, obj: Model) -> str:
        return money(amount_of(obj), currency_of(obj))

    return column


def minor_units(amount: Decimal, currency: str) -> int:
    """A typed amount in minor units, or the domain error the action reports for this object."""
    try:
        return to_minor(amount, currency)
    except ValueError as exc:
        raise InvalidOperation(str(exc), code="invalid_amount") from exc


def run_for_each(modeladmin: admin.ModelAdmin, request, queryset: QuerySet, operation: Callable[[Model], object],
                 *, done: str) -> int:
    """Call a service once per selected object.

    Each service call is its own transaction, so one object's failure neither stops nor undoes the
    others; a domain error becomes an error message naming the object, never a 500. Objects are taken
    in primary-key order, the order the services lock rows in.
    """
    succeeded = 0
    for obj in queryset.order_by("pk"):
        try:
            operation(obj)
        except BillingError as exc:
            modeladmin.message_user(request, _("%(object)s: %(error)s") % {"object": obj, "error": exc.message},
                                    messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, done.format(count=succeeded), messages.SUCCESS)
    return succeeded


class ActionForm(forms.Form):
    """Base of the intermediate forms of admin actions.

    `token` is drawn once per rendering of the form; services that take an idempotency key get one
    derived from it, so a double-submitted confirmation does the work once.
    """

    token = forms.UUIDField(widget=forms.HiddenInput)

    def idempotency_key(self, prefix: str, obj: Model) -> str:
        return f"admin-{prefix}:{self.cleaned_data['token']}:{obj.pk}"


# Marks the POST that confirms an intermediate form (the first POST only chose the action).
APPLY_FIELD = "_apply"


def action_form_bind(request, form_class: type[ActionForm], *, initial: dict | None = None) -> ActionForm:
    """The form bound to the confirmation POST, or unbound with its initial values when the action has
    just been chosen on the changelist."""
    if APPLY_FIELD in request.POST:
        return form_class(request.POST)
    return form_class(initial={"token": uuid.uuid4(), **(initial or {})})


def action_form_response(modeladmin: admin.ModelAdmin, request, queryset: QuerySet, *, form: ActionForm,
                         action: str, title: str, submit_label: str, help_text: str = "") -> TemplateResponse:
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "help_text": help_text,
        "form": form,
        "objects": queryset.order_by("pk"),
        "opts": opts,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "apply_field": APPLY_FIELD,
        "submit_label": submit_label,
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, "admin/billing/action_form.html", context)


def live_status_badge(*, topic: str, obj) -> str:
    """An object's status as a badge that templates/admin/live/badges.js.html keeps current from the
    live topic (found by data-topic and data-id; it swaps the label and the status-* class)."""
    return format_html('<span class="live-badge status-{}" data-topic="{}" data-id="{}">{}</span>',
                       obj.status, topic, obj.pk, obj.get_status_display())


def csv_export_action(spec):
    """An admin action that streams the selected rows (or every row the filters select) as CSV; it needs
    only the view permission, like the list itself."""
    @admin.action(description=_("Export selected rows to CSV"), permissions=["view"])
    def export_csv(modeladmin, request, queryset):
        return csv_export_response(queryset=queryset.order_by("pk"), spec=spec,
                                   stamp=timezone.now().strftime("%Y%m%dT%H%M%SZ"))

    return export_csv
