from django.contrib import admin
from django.urls import include, path

from billing_project.health import healthz
from payments.views import invoice_print

urlpatterns = [
    path("admin/", admin.site.urls),
    # Django's set_language view: the admin header's language switcher posts here (docs/i18n.md).
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    # Each installed rail's webhook endpoint at /webhooks/<rail code>/ (payments/providers/urls.py).
    path("webhooks/", include("payments.providers.urls")),
    path("invoices/<int:pk>/print/", invoice_print, name="invoice-print"),
    path("", include("billing_project.api.router")),
]

# A database pool that stayed exhausted answers 503 with Retry-After; anything else is Django's 500.
handler500 = "core.server_errors.server_error"
