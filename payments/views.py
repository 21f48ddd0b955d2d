"""HTML views of payments: the printable invoice, for staff (from the admin) and for the customer's own
user (from the API's links). Everyone else gets a 404, so invoice ids of other customers stay unknown."""

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from payments.invoice_html import invoice_render_html
from payments.models import Invoice


@require_GET
def invoice_print(request, pk: int) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        raise Http404("No such invoice.")
    invoices = Invoice.objects.select_related("customer")
    if not user.is_staff:
        invoices = invoices.filter(customer__user=user)
    invoice = invoices.filter(pk=pk).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return HttpResponse(invoice_render_html(invoice=invoice))
