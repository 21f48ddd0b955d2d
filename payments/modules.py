"""The modules this app is made of (discovered by the `modules` app; docs/modules.md).

A payment rail registers as a module next to its code: a `rail_module(code, name, ...)` line with its
doors (webhook path, admin models) in the rail's own `modules.py` when the rail is an app
(payments/providers/stripe/modules.py), here otherwise (manual). A rail switched off is not used by the
provider registry (payments/providers/registry.py).
"""

from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from modules.definitions import ConfigField, HealthReport, ModuleDefinition
from modules.selectors import module_config
from payments.billing.renewals import RENEWALS, TRIALS
from payments.live.health import live_health
from payments.live.topics import TOPICS as PAYMENTS_TOPICS
from payments.providers import provider_installed_for
from payments.selectors.billing_lag import billing_oldest_due


def invoicing_health(deep: bool) -> HealthReport:
    """The billing run's lag: how long the oldest subscription due for renewal has waited. Degraded past
    the configured minutes (a run that stopped, or one that cannot keep up)."""
    oldest = billing_oldest_due(as_of=timezone.now())
    if oldest is None:
        return HealthReport(status="ok", message=_("nothing due is waiting"), details={"lag_seconds": 0})
    lag = (timezone.now() - oldest).total_seconds()
    allowed = module_config(code="invoicing")["lag_degraded_minutes"] * 60
    details = {"lag_seconds": int(lag), "oldest_due": oldest.isoformat()}
    if lag > allowed:
        return HealthReport(status="degraded", details=details,
                            message=_("the oldest subscription due has waited %(minutes)s minutes for the billing "
                                      "run (more than %(allowed)s)")
                            % {"minutes": int(lag // 60), "allowed": allowed // 60})
    return HealthReport(status="ok", details=details)


def rail_health(code: str):
    def check(deep: bool) -> HealthReport:
        provider = provider_installed_for(code)
        if provider is None:
            return HealthReport(status="ok", message=_("not installed (PAYMENT_PROVIDERS)"))
        health = provider.health(deep=deep)
        return HealthReport(status=health.status, message="; ".join(health.problems), details=dict(health.details))
    return check


def _rail_description(name: str) -> str:
    return _("The %(rail)s payment rail (docs/providers.md).") % {"rail": name}


# The description is worded when it is read, in the reader's language (the definition is built at import).
rail_description = lazy(_rail_description, str)


def rail_module(code: str, name: str, **doors) -> ModuleDefinition:
    """`name` is the rail's brand (Stripe, PayPal: the same in every language) or a lazily translated
    phrase (the manual rail's)."""
    return ModuleDefinition(code=code, name=name, version="1.0.0", requires=("invoicing",),
                            description=rail_description(name), health_check=rail_health(code), **doors)


MODULES = [
    ModuleDefinition(
        code="invoicing", name=gettext_lazy("Invoicing and the billing run"),
        version="1.0.0", requires=("subscriptions",),
        description=gettext_lazy("Invoices, payments and refunds, renewals and trial conversions by `billing run`."),
        permissions=("payments.view_invoice", "payments.view_payment", "payments.refund_payment"),
        admin_models=("payments.invoice", "payments.invoiceline", "payments.invoicestatuschange",
                      "payments.invoicenumbersequence", "payments.payment", "payments.refund",
                      "payments.refundstatuschange", "payments.paymentstatuschange"),
        api_prefixes=("/api/v1/invoices/", "/api/v1/payments/", "/invoices/"),
        dashboard_panels=("receivables", "collected"),
        billing_steps=(TRIALS, RENEWALS),
        live_topics=("payments", "invoices"),
        config=(ConfigField(name="lag_degraded_minutes", kind="int", default=60, minimum=1, maximum=7 * 24 * 60,
                            help=gettext_lazy("/healthz reports invoicing degraded when the oldest subscription due "
                                              "has waited longer than this for the billing run.")),),
        health_check=invoicing_health,
    ),
    ModuleDefinition(
        code="dunning", name=gettext_lazy("Collection and dunning"), version="1.0.0", requires=("invoicing",),
        description=gettext_lazy("Charging open invoices, retries on BILLING_DUNNING_RETRY_DAYS, then uncollectible."),
        billing_steps=("collection",),
    ),
    rail_module("manual", gettext_lazy("Manual payments (cash, check, bank transfer)")),
    ModuleDefinition(
        code="live", name=gettext_lazy("Live updates"), version="1.0.0", requires=("platform",),
        description=gettext_lazy("WebSocket topics (/ws/) pushing committed changes to customers and staff."),
        # live_updates: a customer's user may subscribe to topics (staff need the model's view permission).
        features=("live_updates",),
        health_check=live_health,
    ),
]

TOPICS = PAYMENTS_TOPICS
