"""Schemathesis over the whole OpenAPI schema (/api/schema/), as a customer and as staff.

Every operation is called in-process through the WSGI application on the test database, with data a
real account has (a subscription, invoices, a payment, credits, usage, an order), and path ids drawn
partly from those rows so the 2xx branches run too. The run fails on any 5xx and on any answer the
schema does not describe: undocumented status, body not matching, wrong content type, bad headers.

Bounded and repeatable: a fixed seed, derandomized generation, API_FUZZ_EXAMPLES fuzzing cases per
operation (plus the examples and coverage phases' own cases). Reproduce one operation with
`pytest billing_project/tests/test_api_schemathesis.py -k "customer and POST /api/v1/usage/events/"`.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from billing_project.tests.api_support import api_customer
from billing_project.wsgi import application
from core.audit import Actor
from credits.services import credit_grant
from payments.models import InvoiceStatus, PaymentMethod, PaymentStatus
from payments.services.credit_pack_orders import credit_pack_order_place
from payments.tests.factories import InvoiceFactory, PaymentFactory
from payments.tests.stripe_support import LOCALSTRIPE_KEY, RecordingStripe, localstripe_start, localstripe_stop
from subscriptions.tests.factories import PlanFactory, StaffUserFactory
from usage.models import MeterPrice
from usage.services import UsageEventInput, usage_events_record_batch
from usage.tests.factories import MeterFactory

API_FUZZ_EXAMPLES = 8
SEED = 20260101

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"max-examples": API_FUZZ_EXAMPLES, "deterministic": True},
    "phases": {"stateful": {"enabled": False}},
    # The contract: no 5xx, and every answer is one the schema documents (status, body, media type,
    # headers). Other checks judge API design rather than truthfulness and stay off.
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
    },
})

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)


@dataclass
class Account:
    """Who calls, and the ids of rows it may see, by the collection path they live under."""

    token: str
    ids: dict[str, list[int]] = field(default_factory=dict)


# The ids the current test's account can see; read by the path-parameter hook while Hypothesis draws.
_visible: dict[str, list[int]] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Half the time an `{id}` is a real row of the caller's (so 2xx answers are checked too), else as
    generated (mostly 404s)."""
    collection = re.sub(r"\{id\}.*", "", context.operation.path)
    ids = _visible.get(collection)
    if not path_parameters or "id" not in path_parameters or not ids:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters),
                     st.sampled_from(ids).map(lambda pk: {**path_parameters, "id": pk}))


def _customer_books() -> tuple[str, dict[str, list[int]]]:
    """A customer on a metered plan with credits, usage, invoices, payments and a credit pack order."""
    actor = Actor.system("schemathesis fixture")
    account = api_customer()
    customer, subscription = account.customer, account.subscription
    meter = MeterFactory(code="api-calls")
    MeterPrice.objects.create(plan=account.plan, meter=meter, unit_amount=2, included_units=10)
    grant = credit_grant(customer=customer, amount=500, source="promotion", actor=actor, reason="fixture")
    usage_events_record_batch(customer=customer, actor=actor, events=[
        UsageEventInput(meter_code="api-calls", idempotency_key=f"evt-{n}", quantity=Decimal(n + 1),
                        occurred_at=timezone.now() - timedelta(minutes=n)) for n in range(3)])
    open_invoice = InvoiceFactory(customer=customer, subscription=subscription, status=InvoiceStatus.OPEN,
                                  number=f"S-{customer.pk}-1", total=4900, amount_due=4900,
                                  issued_at=timezone.now())
    paid_invoice = InvoiceFactory(customer=customer, subscription=subscription, status=InvoiceStatus.PAID,
                                  number=f"S-{customer.pk}-2", total=1000, amount_due=0, amount_paid=1000,
                                  issued_at=timezone.now())
    payments = [PaymentFactory(customer=customer, invoice=paid_invoice, amount=1000, method=PaymentMethod.BANK_TRANSFER,
                               status=PaymentStatus.SUCCEEDED, succeeded_at=timezone.now()),
                PaymentFactory(customer=customer, invoice=open_invoice, amount=4900)]
    order = credit_pack_order_place(customer=customer, pack="credits-100", actor=actor)
    PlanFactory(code="upgrade", amount=9900)
    token = account.client._credentials["HTTP_AUTHORIZATION"].split()[1]
    return token, {
        "/api/v1/plans/": [account.plan.pk],
        "/api/v1/customers/": [customer.pk],
        "/api/v1/subscriptions/": [subscription.pk],
        "/api/v1/invoices/": [open_invoice.pk, paid_invoice.pk],
        "/api/v1/payments/": [p.pk for p in payments],
        "/api/v1/credits/grants/": [grant.entry.grant_id],
        "/api/v1/credits/ledger/": [grant.entry.pk],
        "/api/v1/credits/orders/": [order.pk],
        "/api/v1/meters/": [meter.pk],
        "/api/v1/usage/events/": list(customer.usage_events.values_list("pk", flat=True)),
    }


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI handler closes the database connection after each request, which would end the test's
    transaction; Django's own test client disconnects the same signal handler for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def _localstripe():
    process, url = localstripe_start()
    yield url
    localstripe_stop(process)


@pytest.fixture(autouse=True)
def _stripe_peer(request, settings, _localstripe):
    """Stripe configured, on loopback: a 503 `payment_provider_unavailable` is the answer of a deployment
    without Stripe, not of this one. localstripe has no Checkout Sessions; a recording peer plays them."""
    settings.STRIPE_SECRET_KEY = LOCALSTRIPE_KEY
    if "/checkout/" in request.node.name:
        peer = RecordingStripe()
        settings.STRIPE_API_BASE = peer.url
        yield
        peer.close()
    else:
        settings.STRIPE_API_BASE = _localstripe
        yield


@pytest.fixture
def as_customer(db) -> Account:
    token, ids = _customer_books()
    _visible.clear()
    _visible.update(ids)
    return Account(token=token, ids=ids)


@pytest.fixture
def as_staff(db) -> Account:
    from rest_framework.authtoken.models import Token

    _, ids = _customer_books()  # someone else's books, which staff see
    staff = StaffUserFactory()
    _visible.clear()
    _visible.update(ids)
    return Account(token=Token.objects.create(user=staff).key, ids=ids)


_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.filter_too_much, HealthCheck.data_too_large],
                     deadline=None, print_blob=True)


@schema.parametrize()
@_SETTINGS
def test_the_api_answers_as_its_schema_says_to_a_customer(case, as_customer):
    case.call_and_validate(headers={"Authorization": f"Token {as_customer.token}"})


@schema.parametrize()
@_SETTINGS
def test_the_api_answers_as_its_schema_says_to_staff(case, as_staff):
    case.call_and_validate(headers={"Authorization": f"Token {as_staff.token}"})
