from django.contrib import admin
from django.urls import include, path

from billing_project.health import healthz
from payments.providers.paypal.webhooks.views import paypal_webhook
from payments.providers.stripe.webhooks.views import stripe_webhook
from payments.views import invoice_print

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),
    path("webhooks/paypal/", paypal_webhook, name="paypal-webhook"),
    path("invoices/<int:pk>/print/", invoice_print, name="invoice-print"),
    path("", include("billing_project.api.router")),
]

# A database pool that stayed exhausted answers 503 with Retry-After; anything else is Django's 500.
handler500 = "core.server_errors.server_error"
