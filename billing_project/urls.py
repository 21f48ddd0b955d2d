from django.contrib import admin
from django.urls import path

from billing_project.health import healthz
from payments.views import invoice_print

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("invoices/<int:pk>/print/", invoice_print, name="invoice-print"),
]
