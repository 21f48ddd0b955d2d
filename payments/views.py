"""HTML views of payments: the printable invoice, for staff who may view invoices (from the admin) and
for the customer's own user (from the API's links). Other customers get a 404, so invoice ids of other
customers stay unknown; staff without `payments.view_invoice` get a 403, as in the admin."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from payments.invoice_html import invoice_language, invoice_render_html
from payments.models import Invoice


@require_GET
def invoice_print(request, pk: int) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        raise Http404(_("No such invoice."))
    invoices = Invoice.objects.select_related("customer")
    if user.is_staff and not user.has_perm("payments.view_invoice"):
        raise PermissionDenied(_("Viewing invoices needs the payments.view_invoice permission."))
    if not user.is_staff:
        invoices = invoices.filter(customer__user=user)
    invoice = invoices.filter(pk=pk).first()
    if invoice is None:
        raise Http404(_("No such invoice."))
    # The customer's language unless `?language=ar|en` asks for the other (the admin links both).
    language = invoice_language(invoice=invoice, requested=request.GET.get("language"))
    return HttpResponse(invoice_render_html(invoice=invoice, language=language))
