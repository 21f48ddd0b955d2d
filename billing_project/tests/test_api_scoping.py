"""A customer never sees or touches another customer's objects: their ids answer 404, everywhere."""

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from billing_project.api.router import router
from billing_project.tests.api_support import api_customer, staff_client
from core.audit import Actor
from credits.services import credit_grant
from payments.models import CreditPackOrder, CreditPackOrderStatus, PaymentMethod, PaymentStatus
from payments.services.credit_pack_orders import credit_pack_order_place
from payments.tests.factories import InvoiceFactory, PaymentFactory
from usage.models import ThresholdKind, UsageAlert, UsageThreshold
from usage.services import UsageEventInput, usage_events_record_batch
from usage.tests.factories import MeterFactory

# Catalog resources are shared by everyone; every other detail route belongs to one customer.
GLOBAL_BASENAMES = {"plan", "meter"}
# The merchant's own settings: no customer's rows, refused to every customer before any lookup (403 for any id).
STAFF_ONLY_BASENAMES = {"webhook-endpoint", "webhook-delivery"}

BODIES = {
    "cancel": {"at_period_end": False}, "change_plan": {"plan": None}, "refund": {}, "void": {}, "mark_paid": {},
    "pause": {}, "resume": {}, "update": {"name": "x", "email": "x@example.com", "currency": "USD"},
    "partial_update": {"name": "stolen"},
}


def _other_customers_objects():
    other = api_customer()
    meter = MeterFactory()
    write = credit_grant(customer=other.customer, amount=100, source="purchase", actor=Actor.system("test"))
    event = usage_events_record_batch(customer=other.customer, events=[
        UsageEventInput(meter_code=meter.code, idempotency_key="e1", quantity=Decimal(1))]).results[0]
    invoice = InvoiceFactory(customer=other.customer)
    payment = PaymentFactory(customer=other.customer, method=PaymentMethod.CASH, status=PaymentStatus.SUCCEEDED)
    order = credit_pack_order_place(customer=other.customer, pack="credits-100", actor=Actor.system("test"))
    threshold = UsageThreshold.objects.create(customer=other.customer, kind=ThresholdKind.CREDIT_BALANCE, value=10)
    alert = UsageAlert.objects.create(threshold=threshold, customer=other.customer, period_start=timezone.now(),
                                      observed=Decimal(5))
    ids = {"customer": other.customer.pk, "subscription": other.subscription.pk, "invoice": invoice.pk,
           "payment": payment.pk, "credit-grant": write.entry.grant_id, "credit-ledger": write.entry.pk,
           "usage-event": event.id, "credit-pack-order": order.pk, "usage-threshold": threshold.pk,
           "usage-alert": alert.pk}
    return other, ids


def _detail_routes():
    """(basename, path with {pk}, method, action) of every detail route and action on the router."""
    for pattern in router.urls:
        regex = str(pattern.pattern)
        if "<pk>" not in regex or "<format>" in regex:
            continue
        path = "/api/v1/" + re.sub(r"\(\?P<pk>[^)]*\)", "{pk}", regex).lstrip("^").rstrip("$")
        for method, action in list(pattern.callback.actions.items()):
            if method == "head":  # DRF adds it to `actions` once a GET has run; it has no body to check
                continue
            yield pattern.callback.initkwargs["basename"], path, method, action


@pytest.mark.django_db
def test_every_detail_route_and_action_answers_404_for_another_customers_id():
    me = api_customer()
    other, ids = _other_customers_objects()
    walked = set()
    for basename, route, method, action in list(_detail_routes()):
        if basename in GLOBAL_BASENAMES:
            continue
        if basename in STAFF_ONLY_BASENAMES:
            assert getattr(me.client, method)(route.format(pk=1), {}, format="json").status_code == 403, route
            continue
        path = route.format(pk=ids[basename])
        body = dict(BODIES.get(action, {}))
        if "plan" in body:
            body["plan"] = me.plan.pk
        response = getattr(me.client, method)(path, body, format="json")
        assert response.status_code == 404, (method, path, response.content)
        assert response.json()["error"]["type"] == "not_found"
        walked.add((basename, action))
    assert {("subscription", a) for a in ("retrieve", "cancel", "pause", "resume", "change_plan")} <= walked
    assert {("invoice", "void"), ("invoice", "mark_paid"), ("invoice", "html"), ("invoice", "finalize"),
            ("payment", "refund"),
            ("customer", "partial_update"), ("credit-pack-order", "retrieve"), ("credit-pack-order", "cancel"),
            ("credit-grant", "retrieve"), ("credit-ledger", "retrieve"), ("usage-event", "retrieve"),
            ("usage-threshold", "retrieve"), ("usage-alert", "retrieve")} <= walked
    other.subscription.refresh_from_db()
    assert other.subscription.status == "active"
    assert CreditPackOrder.objects.get(pk=ids["credit-pack-order"]).status == CreditPackOrderStatus.PENDING


NAMING_ROUTES = [
    ("get", "/api/v1/credits/balance/?customer={id}", None),
    ("get", "/api/v1/usage/summary/?customer={id}", None),
    ("get", "/api/v1/entitlements/?customer={id}", None),
    ("post", "/api/v1/credits/debit/", {"amount": 1, "customer": "{id}"}),
    ("post", "/api/v1/usage/events/", {"meter": "m", "idempotency_key": "x", "customer": "{id}"}),
    ("post", "/api/v1/subscriptions/", {"plan": "{plan}", "customer": "{id}"}),
    ("post", "/api/v1/payment-methods/setup-intent/", {"customer": "{id}"}),
    ("post", "/api/v1/payment-methods/approval/", {"provider": "paypal", "customer": "{id}"}),
    ("post", "/api/v1/payment-methods/approval/confirm/", {"provider": "paypal", "setup_token": "x",
                                                           "customer": "{id}"}),
    # An invoice id that is not one of mine (here: another customer's id, no invoice of mine).
    ("post", "/api/v1/checkout/invoice/", {"invoice": "{id}", "provider": "paypal"}),
    ("post", "/api/v1/checkout/subscription/", {"plan": "{plan}", "customer": "{id}"}),
    ("post", "/api/v1/checkout/credit-pack/", {"pack": "credits-100", "customer": "{id}"}),
    ("post", "/api/v1/credits/orders/", {"pack": "credits-100", "customer": "{id}"}),
]
# Writes without an id that only staff may make: a customer gets 403 whoever it names.
STAFF_ONLY_WRITES = {"/api/v1/plans/", "/api/v1/customers/", "/api/v1/credits/grants/", "/api/v1/invoices/",
                     "/api/v1/payments/", "/api/v1/webhook-endpoints/", "/api/v1/usage/thresholds/"}


def _list_write_routes():
    """Every POST route of the router without an id in its path."""
    for pattern in router.urls:
        regex = str(pattern.pattern)
        if "<pk>" in regex or "<format>" in regex or "post" not in getattr(pattern.callback, "actions", {}):
            continue
        yield "/api/v1/" + regex.lstrip("^").rstrip("$")


@pytest.mark.django_db
def test_every_write_route_without_an_id_is_walked_or_staff_only():
    me = api_customer()
    walked = {path for method, path, body in NAMING_ROUTES if method == "post"}
    for path in _list_write_routes():
        if path in STAFF_ONLY_WRITES:
            assert me.client.post(path, {}, format="json").status_code == 403, path
        else:
            assert path in walked, f"{path} is not in NAMING_ROUTES"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), NAMING_ROUTES)
def test_naming_another_customer_in_a_query_or_body_is_404(method, path, body, settings):
    # Stripe is not configured: had the customer been accepted, the answer would be a 503, not a 404.
    settings.STRIPE_SECRET_KEY = ""
    me = api_customer()
    other, ids = _other_customers_objects()
    MeterFactory(code="m")
    fill = {"{id}": other.customer.pk, "{plan}": me.plan.pk}
    if body is not None:
        body = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
        response = me.client.post(path, body, format="json")
    else:
        response = me.client.get(path.format(id=other.customer.pk))
    assert response.status_code == 404, response.content


@pytest.mark.django_db
def test_lists_never_show_another_customers_rows_even_when_filtered_for_them():
    me = api_customer()
    other, ids = _other_customers_objects()
    for path in ("customers", "subscriptions", "invoices", "payments", "credits/ledger", "credits/grants",
                 "usage/events", "credits/orders"):
        response = me.client.get(f"/api/v1/{path}/?customer={other.customer.pk}")
        assert response.status_code == 200, (path, response.content)
        owners = {row["id"] if path == "customers" else row["customer"] for row in response.json()["results"]}
        assert owners <= {me.customer.pk}, path


@pytest.mark.django_db
def test_staff_see_every_customers_objects():
    other, ids = _other_customers_objects()
    client = staff_client()
    for basename, path in [("customer", "customers"), ("subscription", "subscriptions"), ("invoice", "invoices"),
                           ("payment", "payments"), ("credit-grant", "credits/grants"),
                           ("credit-ledger", "credits/ledger"), ("usage-event", "usage/events"),
                           ("credit-pack-order", "credits/orders")]:
        assert client.get(f"/api/v1/{path}/{ids[basename]}/").status_code == 200, path
    assert client.get(f"/api/v1/credits/balance/?customer={other.customer.pk}").json()["balance"] == 100
