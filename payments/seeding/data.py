"""The plan and meter catalog that `manage.py seed` creates, as plain data.

Prices are in major units (Decimal "9.99") and become minor units for the configured currency when
seeded, so the catalog reads like the price list a product manager writes. Kept apart from
`payments.seeding` so changing a price never means reading the code that writes rows.
"""

from dataclasses import dataclass, field
from decimal import Decimal

# Paid plans let a customer try them this long before the first invoice.
TRIAL_DAYS = 14
# A yearly plan costs ten months: two months free is the usual incentive to commit for a year.
YEARLY_PRICE_MONTHS = 10

# Every plan includes "api_access": the rate limits below only mean something for API calls, and a
# free tier the API refuses would make those limits dead numbers. Staff-only screens need nothing.
# Only features a module declares and a door checks are listed (docs/modules.md): paid tiers add live
# updates over WebSockets; the tiers otherwise differ by price, credits and limits.
FEATURES_FREE = ["api_access"]
FEATURES_BASIC = [*FEATURES_FREE, "live_updates"]
FEATURES_PRO = FEATURES_BASIC
FEATURES_ENTERPRISE = FEATURES_PRO


@dataclass(frozen=True)
class MeterSpec:
    code: str
    name: str
    aggregation: str
    unit: str
    unique_property: str = ""
    # Set for meters paid in prepaid credits rather than in arrears.
    credits_per_unit: Decimal | None = None


@dataclass(frozen=True)
class MeterPriceSpec:
    meter: str
    # Decimal minor units per unit beyond the included ones ($0.0005 per call is 0.05).
    unit_amount: Decimal
    # Per month; yearly plans include twelve times as much per (yearly) period.
    included_units: Decimal


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    description: str
    monthly_price: Decimal
    credits_per_month: int
    rate_limit_per_minute: int
    rate_limit_per_hour: int
    api_calls_per_day: int
    features: list[str]
    sort_order: int
    meter_prices: list[MeterPriceSpec] = field(default_factory=list)
    has_yearly: bool = True
    # The plan's name on Arabic invoices and emails (Plan.name_ar).
    name_ar: str = ""


METERS = [
    MeterSpec(code="api_calls", name="API calls", aggregation="sum", unit="call"),
    MeterSpec(code="storage_gb", name="Storage", aggregation="max", unit="GB"),
    MeterSpec(code="active_users", name="Active users", aggregation="unique_count", unit="user",
              unique_property="user_id"),
    # Expensive work (report generation) is paid per use from the plan's credits.
    MeterSpec(code="report_generations", name="Report generations", aggregation="sum", unit="report",
              credits_per_unit=Decimal(1)),
]

PLANS = [
    PlanSpec(
        code="free", name="Free", description="Try the product: the dashboard and a small API allowance.",
        monthly_price=Decimal("0"), credits_per_month=10, rate_limit_per_minute=5, rate_limit_per_hour=50,
        api_calls_per_day=500, features=FEATURES_FREE, sort_order=0, has_yearly=False,
        # No meter prices: a free customer is never billed in arrears, the rate limits cap it instead.
        name_ar="المجانية",
    ),
    PlanSpec(
        code="basic", name="Basic", description="For small teams getting started with the API.",
        monthly_price=Decimal("9.99"), credits_per_month=100, rate_limit_per_minute=20, rate_limit_per_hour=500,
        api_calls_per_day=5_000, features=FEATURES_BASIC, sort_order=10,
        meter_prices=[
            MeterPriceSpec(meter="api_calls", unit_amount=Decimal("0.05"), included_units=Decimal(10_000)),
            MeterPriceSpec(meter="storage_gb", unit_amount=Decimal(25), included_units=Decimal(10)),
            MeterPriceSpec(meter="active_users", unit_amount=Decimal(500), included_units=Decimal(3)),
        ],
        name_ar="الأساسية",
    ),
    PlanSpec(
        code="pro", name="Pro", description="For growing products: webhooks, usage export, priority support.",
        monthly_price=Decimal("29.99"), credits_per_month=1_000, rate_limit_per_minute=50, rate_limit_per_hour=2_000,
        api_calls_per_day=25_000, features=FEATURES_PRO, sort_order=20,
        meter_prices=[
            MeterPriceSpec(meter="api_calls", unit_amount=Decimal("0.04"), included_units=Decimal(100_000)),
            MeterPriceSpec(meter="storage_gb", unit_amount=Decimal(20), included_units=Decimal(100)),
            MeterPriceSpec(meter="active_users", unit_amount=Decimal(400), included_units=Decimal(10)),
        ],
        name_ar="الاحترافية",
    ),
    PlanSpec(
        code="enterprise", name="Enterprise", description="SSO, audit log and a dedicated support contact.",
        monthly_price=Decimal("99.99"), credits_per_month=10_000, rate_limit_per_minute=100,
        rate_limit_per_hour=10_000, api_calls_per_day=200_000, features=FEATURES_ENTERPRISE, sort_order=30,
        meter_prices=[
            MeterPriceSpec(meter="api_calls", unit_amount=Decimal("0.02"), included_units=Decimal(1_000_000)),
            MeterPriceSpec(meter="storage_gb", unit_amount=Decimal(10), included_units=Decimal(1_000)),
            MeterPriceSpec(meter="active_users", unit_amount=Decimal(300), included_units=Decimal(50)),
        ],
        name_ar="المؤسسات",
    ),
]

# Credit packs a customer can buy on top of its plan: (credits, price in major units).
CREDIT_PACKS = [(100, Decimal("5.00")), (500, Decimal("20.00")), (2_000, Decimal("60.00"))]

# Names of the demo customers, cycled (with a number) when more customers are asked for.
DEMO_COMPANY_NAMES = [
    "Acme Analytics", "Bluebird Logistics", "Copperleaf Studio", "Dunmore Health", "Evergreen Robotics",
    "Foxglove Media", "Granite Payroll", "Harbor & Finch", "Ironwood Labs", "Juniper Travel",
    "Kestrel Security", "Lumen Education", "Maple Street Bakery", "Northwind Energy", "Orchid Biotech",
    "Pinecone Games", "Quarry Legal", "Redwood Realty", "Saffron Kitchens", "Tidewater Freight",
    "Umbra Design", "Vantage Insurance", "Willow Pet Care", "Xenon Networks", "Yellowfin Fisheries",
    "Zephyr Aviation",
]


# Arabic-speaking demo customers (payments/seeding/arabic.py): businesses in Yemen billed in Yemeni rials
# and in Saudi Arabia billed in Saudi riyals, each on the monthly plans priced in its own currency.
# Monthly list prices per tier in major units: YER has no minor unit in CLDR, so its prices are whole rials.
REGIONAL_MONTHLY_PRICES = {
    "YER": {"basic": Decimal("5000"), "pro": Decimal("25000"), "enterprise": Decimal("100000")},
    "SAR": {"basic": Decimal("37"), "pro": Decimal("189"), "enterprise": Decimal("749")},
}


@dataclass(frozen=True)
class ArabicDemoCustomer:
    key: str
    name: str
    name_ar: str
    phone: str
    city: str
    currency: str
    status: str
    plan: str
    method: str


ARABIC_DEMO_CUSTOMERS = [
    ArabicDemoCustomer(key="demo-customer-ar-01", name="Saba Trading", name_ar="سبأ للتجارة", phone="+967 1 441 200",
                       city="Sana'a", currency="YER", status="active", plan="pro", method="bank_transfer"),
    ArabicDemoCustomer(key="demo-customer-ar-02", name="Aden Port Services", name_ar="خدمات ميناء عدن",
                       phone="+967 2 245 310", city="Aden", currency="YER", status="past_due", plan="basic",
                       method="bank_transfer"),
    ArabicDemoCustomer(key="demo-customer-ar-03", name="Hadramout Honey", name_ar="عسل حضرموت", phone="+967 5 302 118",
                       city="Mukalla", currency="YER", status="active", plan="basic", method="cash"),
    ArabicDemoCustomer(key="demo-customer-ar-04", name="Najd Logistics", name_ar="نجد للخدمات اللوجستية",
                       phone="+966 11 465 7000", city="Riyadh", currency="SAR", status="active", plan="enterprise",
                       method="bank_transfer"),
    ArabicDemoCustomer(key="demo-customer-ar-05", name="Red Sea Clinics", name_ar="عيادات البحر الأحمر",
                       phone="+966 12 660 4400", city="Jeddah", currency="SAR", status="active", plan="pro",
                       method="check"),
]
