"""The invoice add form: a one-off invoice (setup fee, consulting day) with hand-written lines and a note to
the customer. The lines are an inline of the add page; nothing is saved by the ModelAdmin itself: the
whole draft is created by `payments.services.invoice_one_off_create`, which the formset's validation
also asks first (`invoice_one_off_check`), so the admin refuses exactly what the API refuses."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.exceptions import BillingError
from core.money import to_minor
from payments.models import Invoice, InvoiceLine
from payments.services import OneOffLine, invoice_one_off_check, invoice_one_off_create


class OneOffLineForm(forms.ModelForm):
    # Typed in the currency's major unit like every amount in the back office (12.50), kept in minor units.
    unit_price = forms.DecimalField(min_value=0, max_digits=21, decimal_places=3,
                                    help_text=_("Per unit, in the customer's currency, e.g. 120.00."))

    class Meta:
        model = InvoiceLine
        fields = ("description", "quantity")


class OneOffLineFormSet(forms.BaseInlineFormSet):
    def one_off_lines(self) -> list[OneOffLine]:
        """The filled-in rows as service input (call after validation)."""
        currency = self.instance.customer.currency
        return [OneOffLine(description=form.cleaned_data["description"], quantity=form.cleaned_data["quantity"],
                           unit_amount=to_minor(form.cleaned_data["unit_price"], currency))
                for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]

    def clean(self):
        super().clean()
        if any(self.errors) or self.instance.customer_id is None:
            return  # the rows' own errors, or the missing customer, are shown first
        try:
            lines = self.one_off_lines()
            invoice_one_off_check(customer=self.instance.customer, currency=self.instance.customer.currency,
                                  lines=lines)
        except ValueError as exc:  # a price with more decimals than the currency has
            raise ValidationError(str(exc)) from exc
        except BillingError as exc:
            raise ValidationError(exc.message) from exc


class OneOffLineInline(admin.TabularInline):
    model = InvoiceLine
    form = OneOffLineForm
    formset = OneOffLineFormSet
    fields = ("description", "quantity", "unit_price")
    extra = 2
    min_num = 1
    validate_min = True
    can_delete = False
    verbose_name = _("line")
    verbose_name_plural = _("Lines (amount = quantity x unit price, rounded once)")

    # The lines are part of the invoice being added: whoever may add invoices writes them.
    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.add_invoice")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.add_invoice")


class OneOffInvoiceForm(forms.ModelForm):
    class Meta:
        model = Invoice
        fields = ("customer", "note")
        help_texts = {"customer": "Billed in the customer's currency.",
                      "note": "A message to the customer, printed on the invoice."}
        widgets = {"note": forms.Textarea(attrs={"rows": 3})}


def one_off_invoice_save(*, form: OneOffInvoiceForm, formsets: list[forms.BaseInlineFormSet]) -> Invoice:
    """Create the draft from the validated add form and fill in the admin's unsaved object (its redirect
    and history entry point at the created invoice)."""
    [lines] = [formset for formset in formsets if isinstance(formset, OneOffLineFormSet)]
    customer = form.cleaned_data["customer"]
    invoice = invoice_one_off_create(customer=customer, currency=customer.currency, note=form.cleaned_data["note"],
                                     lines=lines.one_off_lines())
    form.instance.pk = invoice.pk
    form.instance.refresh_from_db()
    # What the admin's history entry lists as added (the formset saved nothing itself).
    lines.new_objects, lines.changed_objects, lines.deleted_objects = list(invoice.lines.all()), [], []
    return invoice
