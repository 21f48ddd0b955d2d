"""`manage.py seed` as one service: the catalog, the staff account and, on request, demo customers."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models import Count, Model
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.authtoken.models import Token

from core.audit import Actor
from core.exceptions import InvalidOperation
from core.jobs import jobs_suppressed
from credits.models import CreditGrant, CreditLedgerEntry
from payments.models import Invoice, InvoiceLine, Payment, Refund
from payments.seeding.arabic import arabic_demo_customers_build
from payments.seeding.catalog import StaffAccount, seed_catalog, seed_staff_user
from payments.seeding.demo import demo_customer_build, demo_username
from payments.seeding.merchant_of_record import demo_mirrored_customers_build
from payments.seeding.roles import RolesSeeded, seed_role_groups
from subscriptions.models import Customer, Plan, Subscription, SubscriptionEvent
from usage.models import Meter, MeterPrice, UsageEvent

# A guard against a typo (--demo 25000) filling a database for an hour; raise it if you mean it.
MAX_DEMO_CUSTOMERS = 1000

# What the summary counts, in the order it prints them.
_COUNTED: list[tuple[str, type[Model]]] = [
    ("plans", Plan), ("meters", Meter), ("meter prices", MeterPrice), ("customers", Customer),
    ("subscriptions", Subscription), ("subscription events", SubscriptionEvent), ("invoices", Invoice),
    ("invoice lines", InvoiceLine), ("payments", Payment), ("refunds", Refund), ("credit grants", CreditGrant),
    ("credit ledger entries", CreditLedgerEntry), ("usage events", UsageEvent), ("staff role groups", Group),
]
# How the summary names each count, in the reader's language (the report's keys stay the English ones above).
SEED_LABELS = {
    "plans": gettext_lazy("plans"), "meters": gettext_lazy("meters"), "meter prices": gettext_lazy("meter prices"),
    "customers": gettext_lazy("customers"), "subscriptions": gettext_lazy("subscriptions"),
    "subscription events": gettext_lazy("subscription events"), "invoices": gettext_lazy("invoices"),
    "invoice lines": gettext_lazy("invoice lines"), "payments": gettext_lazy("payments"),
    "refunds": gettext_lazy("refunds"), "credit grants": gettext_lazy("credit grants"),
    "credit ledger entries": gettext_lazy("credit ledger entries"), "usage events": gettext_lazy("usage events"),
    "staff role groups": gettext_lazy("staff role groups"),
}


@dataclass(frozen=True)
class SeedReport:
    created: dict[str, int]
    demo_customers_created: int
    demo_customers_existing: int
    # Arabic-speaking demo customers (YER, SAR) this run created; they come with any --demo.
    arabic_demo_customers_created: int
    subscriptions_by_status: dict[str, int]
    invoices_by_status: dict[str, int]
    payments_by_status: dict[str, int]
    staff: StaffAccount
    roles: RolesSeeded
    # A demo customer's API token for the printed curl example; None without demo customers.
    example_token: str | None = None


def _row_counts() -> dict[str, int]:
    return {label: model.objects.count() for label, model in _COUNTED}


def _by_status(model: type[Model]) -> dict[str, int]:
    rows = model.objects.values_list("status").annotate(n=Count("id")).order_by("status")
    return dict(rows)


def seed_run(*, demo: int, staff_username: str, staff_password: str | None,
             as_of: datetime | None = None) -> SeedReport:
    """Make sure the catalog, the staff account and the staff role groups exist and that demo customers
    1..`demo` exist. Everything is found or created by a natural key, so a second run creates nothing;
    the role groups' permissions are set to their definitions (payments/seeding/roles.py) every run."""
    if not 0 <= demo <= MAX_DEMO_CUSTOMERS:
        raise InvalidOperation(_("--demo must be between 0 and %(maximum)s, not %(demo)s.")
                               % {"maximum": MAX_DEMO_CUSTOMERS, "demo": demo}, code="invalid_demo")
    now = timezone.now()
    as_of = as_of or now.replace(microsecond=0)
    if as_of > now:
        raise InvalidOperation(_("--as-of cannot be in the future: demo history is what already happened."),
                               code="invalid_as_of")
    before = _row_counts()
    staff = seed_staff_user(username=staff_username, password=staff_password)
    roles = seed_role_groups()
    catalog = seed_catalog(currency=settings.DEFAULT_CURRENCY)
    created = 0
    with jobs_suppressed():  # the demo history happened in the past: no emails about it now
        for index in range(1, demo + 1):
            if demo_customer_build(index=index, as_of=as_of, catalog=catalog, staff=Actor.of_user(staff.user)):
                created += 1
        # A few more on each merchant-of-record rail (one per eight demo customers, at most three).
        demo_mirrored_customers_build(count=min(3, demo // 8), as_of=as_of, catalog=catalog,
                                      staff=Actor.of_user(staff.user))
        # A few Arabic-speaking customers billed in YER and SAR beside any demo (payments/seeding/arabic.py).
        arabic = arabic_demo_customers_build(as_of=as_of, catalog=catalog, staff=Actor.of_user(staff.user)) \
            if demo else 0
    after = _row_counts()
    example = None
    if demo:
        user = Customer.objects.select_related("user").get(external_id=demo_username(1)).user
        example = Token.objects.get_or_create(user=user)[0].key
    return SeedReport(
        created={label: after[label] - before[label] for label in after},
        demo_customers_created=created, demo_customers_existing=demo - created, arabic_demo_customers_created=arabic,
        subscriptions_by_status=_by_status(Subscription), invoices_by_status=_by_status(Invoice),
        payments_by_status=_by_status(Payment), staff=staff, roles=roles, example_token=example,
    )
