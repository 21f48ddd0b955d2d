"""The plan catalog, its meters and prices, and the staff account: created when missing, never changed.

Existing rows are left as they are on purpose: staff may have edited a price or a limit in the admin,
and re-running the seed must not silently undo a business decision (or reprice live subscribers).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _

from core.exceptions import InvalidOperation
from core.money import currency_exponent, round_minor
from payments.seeding.data import METERS, PLANS, TRIAL_DAYS, YEARLY_PRICE_MONTHS, PlanSpec
from subscriptions.models import BillingInterval, Plan
from usage.models import Meter, MeterPrice


@dataclass(frozen=True)
class Catalog:
    plans: dict[str, Plan]
    meters: dict[str, Meter]
    plans_created: int
    meters_created: int
    meter_prices_created: int


@dataclass(frozen=True)
class StaffAccount:
    user: object
    created: bool
    # The password to print, or None when it is not the configured one (changed since, or none given).
    shown_password: str | None


def major_to_minor(*, amount: Decimal, currency: str) -> int:
    """A catalog price written in major units ("9.99") as minor units of `currency`."""
    return round_minor(Decimal(amount).scaleb(currency_exponent(currency)))


def _plan_variants(spec: PlanSpec, currency: str) -> list[tuple[dict, int]]:
    """(Plan fields, months per period) of the monthly plan and, for paid plans, its yearly twin."""
    monthly_price = major_to_minor(amount=spec.monthly_price, currency=currency)
    common = dict(
        currency=currency, rate_limit_per_minute=spec.rate_limit_per_minute,
        rate_limit_per_hour=spec.rate_limit_per_hour, api_calls_per_day=spec.api_calls_per_day,
        features=list(spec.features), trial_days=TRIAL_DAYS if monthly_price else 0, interval_count=1,
    )
    variants = [(dict(common, code=spec.code, name=spec.name, name_ar=spec.name_ar, description=spec.description,
                      amount=monthly_price, interval=BillingInterval.MONTH,
                      credits_per_period=spec.credits_per_month, sort_order=spec.sort_order), 1)]
    if spec.has_yearly:
        variants.append((dict(common, code=f"{spec.code}-yearly", name=f"{spec.name} (yearly)",
                              name_ar=f"{spec.name_ar} (سنوي)" if spec.name_ar else "",
                              description=f"{spec.description} Billed yearly: two months free.",
                              amount=monthly_price * YEARLY_PRICE_MONTHS, interval=BillingInterval.YEAR,
                              credits_per_period=spec.credits_per_month * 12, sort_order=spec.sort_order + 1), 12))
    return variants


@transaction.atomic
def seed_catalog(*, currency: str) -> Catalog:
    currency = currency.upper()
    meters: dict[str, Meter] = {}
    meters_created = 0
    for spec in METERS:
        meter, created = Meter.objects.get_or_create(code=spec.code, defaults=dict(
            name=spec.name, aggregation=spec.aggregation, unit=spec.unit, unique_property=spec.unique_property,
            credits_per_unit=spec.credits_per_unit,
        ))
        meters[spec.code] = meter
        meters_created += created

    plans: dict[str, Plan] = {}
    plans_created = prices_created = 0
    for spec in PLANS:
        for fields, months in _plan_variants(spec, currency):
            code = fields.pop("code")
            plan, created = Plan.objects.get_or_create(code=code, defaults=fields)
            plans[code] = plan
            plans_created += created
            for price in spec.meter_prices:
                _, created = MeterPrice.objects.get_or_create(plan=plan, meter=meters[price.meter], defaults=dict(
                    unit_amount=price.unit_amount, included_units=price.included_units * months,
                ))
                prices_created += created
    return Catalog(plans=plans, meters=meters, plans_created=plans_created, meters_created=meters_created,
                   meter_prices_created=prices_created)


@transaction.atomic
def seed_staff_user(*, username: str, password: str | None) -> StaffAccount:
    """Create the staff superuser, or find it. An existing account's password is never reset, and a
    same-named account without full staff rights is refused rather than promoted. Without a password
    an existing account is accepted but none is created (production gives no default password)."""
    if not username or password == "":
        raise InvalidOperation(_("The staff username and password must not be empty."), code="invalid_staff_account")
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        if password is None:
            raise InvalidOperation(_("No staff user %(username)r yet: set SEED_STAFF_PASSWORD to create it (the "
                                     "default password is only used when DEBUG is on).") % {"username": username},
                                   code="staff_password_required")
        user = user_model.objects.create_superuser(username=username, email=f"{username}@example.com",
                                                   password=password)
        return StaffAccount(user=user, created=True, shown_password=password)
    if not (user.is_active and user.is_staff and user.is_superuser):
        raise InvalidOperation(_("User %(username)r exists but is not an active staff superuser; the seed will not "
                                 "promote it. Set SEED_STAFF_USERNAME to another name.") % {"username": username},
                               code="staff_user_conflict")
    shown = password if password is not None and user.check_password(password) else None
    return StaffAccount(user=user, created=False, shown_password=shown)
