"""Staff get through the API exactly what their Django permissions give them in the admin, on every
endpoint and method (walked from the URL resolver, so a new endpoint is covered without being listed);
customers keep their own rows and are refused staff-only actions."""

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_endpoints import PUBLIC_ENDPOINTS, Endpoint, api_endpoints
from billing_project.tests.api_support import api_customer, token_client
from core.audit import Actor
from credits.services import credit_debit, credit_grant
from outbound_webhooks.services import webhook_event_emit
from outbound_webhooks.tests.factories import WebhookEndpointFactory
from payments.models import InvoiceStatus, PaymentMethod, PaymentStatus
from payments.services.credit_pack_orders import credit_pack_order_place
from payments.tests.factories import InvoiceFactory, PaymentFactory
from subscriptions.api.base import ApiViewMixin
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED, StaffOnly, staff_permissions_of
from subscriptions.tests.factories import StaffUserFactory
from usage.models import ThresholdKind, UsageThreshold
from usage.services import UsageEventInput, usage_events_record_batch
from usage.tests.factories import MeterFactory

ENDPOINTS = [e for e in api_endpoints() if e.name not in PUBLIC_ENDPOINTS]
PERMISSIONS = sorted({p for e in ENDPOINTS if e.requirement for p in staff_permissions_of(e.requirement)})
# Reads a staff member must name a customer or a currency for (a customer reads its own).
READ_QUERY = {"credits-balance": {"customer"}, "usage-summary-list": {"customer"}, "entitlements-list": {"customer"},
              "checkout-credit-packs": {"currency"}}
# Staff have no customer account of their own: `customers/me/` is a 404 for them once allowed.
STAFF_READ_STATUS = {"customer-me": 404}
# Staff-only reads a customer is told do not exist (the finance reports).
CUSTOMER_NOT_FOUND_PREFIXES = ("report-",)


def _undeclared(endpoints: list[Endpoint]) -> list[str]:
    return [str(e) for e in endpoints if e.requirement is None or not e.checks_action_permissions]


def test_every_endpoint_declares_the_permission_of_each_action_and_checks_it():
    assert _undeclared(ENDPOINTS) == []
    assert len(ENDPOINTS) >= 38
    assert {e.name for e in api_endpoints()} >= PUBLIC_ENDPOINTS


def test_staff_reads_need_view_permissions_and_writes_never_do():
    for endpoint in ENDPOINTS:
        codenames = [p.split(".")[1] for p in staff_permissions_of(endpoint.requirement)]
        if endpoint.method == "get":
            assert all(c.startswith("view_") for c in codenames), endpoint
        else:
            assert not any(c.startswith("view_") for c in codenames), endpoint


@pytest.mark.django_db
def test_every_declared_permission_exists():
    existing = {f"{app}.{codename}" for app, codename in
                Permission.objects.values_list("content_type__app_label", "codename")}
    assert set(PERMISSIONS) - existing == set()


class Books:
    """One row of everything an endpoint can address, and the request each endpoint is sent."""

    def __init__(self):
        self.me = api_customer()
        customer = self.me.customer
        meter = MeterFactory()
        credit_grant(customer=customer, amount=100, source="purchase", actor=Actor.system("test"))
        # Two: a walk that deletes one (the destroy action) still finds the other for the actions after it.
        for value in (90, 50):
            UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=value)
        credit_debit(customer=customer, amount=20, actor=Actor.system("test"))  # crosses it: one alert
        usage_events_record_batch(customer=customer, events=[
            UsageEventInput(meter_code=meter.code, idempotency_key="e1", quantity=Decimal(1))])
        # Open and numbered, as the billing run leaves invoices (voiding a draft is a 500: reported, not mine).
        InvoiceFactory(customer=customer, status=InvoiceStatus.OPEN, number="INV-PERMS-1", total=999, amount_due=999)
        PaymentFactory(customer=customer, method=PaymentMethod.CASH, status=PaymentStatus.SUCCEEDED)
        credit_pack_order_place(customer=customer, pack="credits-100", actor=Actor.system("test"))
        WebhookEndpointFactory(event_types=["invoice.paid"])
        webhook_event_emit(event_type="invoice.paid", object_type="invoice", object_id=1, data={})
        self.query = {"customer": customer.pk, "currency": customer.currency}

    def pk_for(self, endpoint: Endpoint, user) -> int:
        """The first row the endpoint's own queryset offers `user`: nothing here names a model."""
        view = endpoint.callback.cls(**endpoint.callback.initkwargs)
        view.request, view.action = SimpleNamespace(user=user), endpoint.action
        view.kwargs, view.format_kwarg = {}, None
        pk = view.get_queryset().order_by("pk").values_list("pk", flat=True).first()
        assert pk is not None, f"{endpoint}: Books has no row for it; add one"
        return pk

    def call(self, client, endpoint: Endpoint, *, pk: int | None = None):
        url = endpoint.path(**({"pk": pk} if "pk" in endpoint.kwargs else {}))
        if endpoint.method == "get":
            return client.get(url, {k: self.query[k] for k in READ_QUERY.get(endpoint.name, ())})
        return getattr(client, endpoint.method)(url, {}, format="json")

    def walk(self, user, *, pk: int | None = None) -> list[tuple[Endpoint, object]]:
        client = token_client(user)
        superuser = StaffUserFactory(username="books-reader")
        return [(e, self.call(client, e, pk=pk if pk is not None else
                              (self.pk_for(e, superuser) if "pk" in e.kwargs else None))) for e in ENDPOINTS]


@pytest.fixture
def books(settings):
    settings.STRIPE_SECRET_KEY = ""  # card endpoints answer 503 once past the permission check
    return Books()


def _refused(response) -> bool:
    return response.status_code == 403 and response.json()["error"]["type"] == "permission_error"


@pytest.mark.django_db
def test_staff_without_permissions_are_refused_every_read_and_write(books):
    answers = books.walk(staff_user(username="no-perms"))
    assert [str(e) for e, r in answers if not _refused(r)] == []
    needs = [r.json()["error"]["message"] for e, r in answers if e.name == "payment-refund"]
    assert needs == ["You need the payments.refund_payment permission for this action."]


@pytest.mark.django_db
def test_staff_without_permissions_learn_nothing_of_which_ids_exist(books):
    answers = books.walk(staff_user(username="no-perms"), pk=987654321)
    assert [str(e) for e, r in answers if not _refused(r)] == []


@pytest.mark.django_db
def test_options_describes_an_endpoint_only_to_staff_who_may_use_it(books):
    urls = {e.path(**({"pk": 987654321} if "pk" in e.kwargs else {})): e for e in ENDPOINTS}
    nobody = token_client(staff_user(username="no-perms"))
    assert [url for url in urls if not _refused(nobody.options(url))] == []
    refunder = token_client(staff_user("payments.refund_payment", username="refunder"))
    open_to_refunder = {url for url in urls if refunder.options(url).status_code == 200}
    payments_views = {url for url, e in urls.items() if e.view_class.__name__ == "PaymentViewSet"}
    assert open_to_refunder == payments_views and len(payments_views) == 5  # list, detail, refund, two exports


@pytest.mark.django_db
def test_staff_with_view_permissions_read_everything_and_change_nothing(books):
    reads = {p for e in ENDPOINTS if e.method == "get" for p in staff_permissions_of(e.requirement)}
    answers = books.walk(staff_user(*reads, username="viewer"))
    wrong = [(str(e), r.status_code) for e, r in answers
             if (e.method == "get" and r.status_code != STAFF_READ_STATUS.get(e.name, 200))
             or (e.method != "get" and not _refused(r))]
    assert wrong == []


@pytest.mark.django_db
@pytest.mark.parametrize("permission", PERMISSIONS)
def test_one_permission_opens_exactly_the_actions_that_need_it(books, permission):
    answers = books.walk(staff_user(permission, username="one-perm"))
    wrong = []
    for endpoint, response in answers:
        allowed = set(staff_permissions_of(endpoint.requirement)) <= {permission}
        if allowed and (response.status_code in (403, 500)):
            wrong.append((str(endpoint), "refused", response.status_code, response.content[:200]))
        elif not allowed and not _refused(response):
            wrong.append((str(endpoint), "let through", response.status_code))
    assert wrong == []
    assert any(set(staff_permissions_of(e.requirement)) == {permission} for e in ENDPOINTS)


@pytest.mark.django_db
def test_customers_read_their_own_rows_and_are_refused_staff_only_actions(books):
    user = books.me.customer.user
    client = token_client(user)
    wrong = []
    for endpoint in ENDPOINTS:
        pk = books.pk_for(endpoint, user) if "pk" in endpoint.kwargs else None
        if endpoint.method == "get" and not isinstance(endpoint.requirement, StaffOnly):
            response = books.call(client, endpoint, pk=pk)
            expected = 404 if endpoint.name.startswith(CUSTOMER_NOT_FOUND_PREFIXES) else 200
            if response.status_code != expected:
                wrong.append((str(endpoint), response.status_code))
        elif isinstance(endpoint.requirement, StaffOnly):  # staff-only reads too (the merchant's webhook settings)
            response = books.call(client, endpoint, pk=pk)
            if not _refused(response) or response.json()["error"]["message"] != "This action is for staff only.":
                wrong.append((str(endpoint), response.status_code))
    assert wrong == []


@pytest.mark.django_db
def test_a_superuser_is_refused_nothing(books):
    answers = books.walk(StaffUserFactory(username="root"))
    assert [str(e) for e, r in answers if r.status_code in (403, 500)] == []


# -- an endpoint nobody declared a permission for -------------------------------------------------

class _UndeclaredViewSet(ApiViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {"list": "subscriptions.view_plan"}

    def list(self, request):
        return Response([])

    @action(detail=False, methods=["post"])
    def launch(self, request):
        return Response({"launched": True})


_router = SimpleRouter()
_router.register("undeclared", _UndeclaredViewSet, basename="undeclared")


class UndeclaredUrls:
    urlpatterns = _router.urls


def test_the_walk_reports_an_action_without_a_declared_permission():
    assert _undeclared(api_endpoints(UndeclaredUrls)) == ["POST undeclared-launch (_UndeclaredViewSet.launch)"]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_an_action_without_a_declared_permission_is_closed_even_to_a_superuser():
    client = token_client(StaffUserFactory(username="root"))
    assert client.get("/undeclared/").status_code == 200
    response = client.post("/undeclared/launch/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "No permission is declared for the 'launch' action; it is closed."


urlpatterns = _router.urls
