"""The one router of the public API, mounted at /api/v1/."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from core.api.views import ApiNotFoundView
from core.urls import prefix_indexed_path
from credits.api.views import CreditGrantViewSet, CreditLedgerViewSet, CreditsViewSet
from payments.api.checkout_views import CheckoutViewSet, PaymentMethodViewSet
from payments.api.credit_pack_order_views import CreditPackOrderViewSet
from payments.api.provider_views import InvoiceCheckoutViewSet, PaymentMethodApprovalViewSet
from payments.api.views import InvoiceViewSet, PaymentViewSet, SubscriptionViewSet
from reports.api.views import ReportViewSet
from subscriptions.api.auth import TokenObtainView
from subscriptions.api.views import CustomerViewSet, PlanViewSet
from subscriptions.api.webhook_views import WebhookDeliveryViewSet, WebhookEndpointViewSet
from usage.api.views import (
    EntitlementViewSet,
    MeterViewSet,
    UsageAlertViewSet,
    UsageEventViewSet,
    UsageSummaryViewSet,
    UsageThresholdViewSet,
)

router = DefaultRouter()
router.register("plans", PlanViewSet, basename="plan")
router.register("customers", CustomerViewSet, basename="customer")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("payments", PaymentViewSet, basename="payment")
router.register("payment-methods/approval", PaymentMethodApprovalViewSet, basename="payment-method-approval")
router.register("payment-methods", PaymentMethodViewSet, basename="payment-method")
router.register("checkout/invoice", InvoiceCheckoutViewSet, basename="checkout-invoice")
router.register("checkout", CheckoutViewSet, basename="checkout")
router.register("credits/orders", CreditPackOrderViewSet, basename="credit-pack-order")
router.register("credits/ledger", CreditLedgerViewSet, basename="credit-ledger")
router.register("credits/grants", CreditGrantViewSet, basename="credit-grant")
router.register("credits", CreditsViewSet, basename="credits")
router.register("usage/events", UsageEventViewSet, basename="usage-event")
router.register("usage/summary", UsageSummaryViewSet, basename="usage-summary")
router.register("usage/alerts", UsageAlertViewSet, basename="usage-alert")
router.register("usage/thresholds", UsageThresholdViewSet, basename="usage-threshold")
router.register("meters", MeterViewSet, basename="meter")
router.register("entitlements", EntitlementViewSet, basename="entitlements")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("reports", ReportViewSet, basename="report")

urlpatterns = [
    path("api/v1/auth/token/", TokenObtainView.as_view(), name="api-token"),
    # include(router.urls), resolved through a prefix index: the router's ~80 patterns are not tried one by one.
    prefix_indexed_path("api/v1/", router.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: anything else under /api/ is a JSON 404 in the API's error shape.
    re_path(r"^api/", ApiNotFoundView.as_view(), name="api-not-found"),
]
