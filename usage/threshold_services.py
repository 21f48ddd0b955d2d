"""Staff's writes of usage thresholds (the API; the admin edits the same rows with the model's
constraints): one rule set, checked before the row is written, so a bad combination is a 400 naming the
field rather than a database error (docs/billing.md, "Usage alerts and spend caps")."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from core.exceptions import InvalidOperation
from subscriptions.models import Customer, Plan
from usage.models import Meter, ThresholdKind, UsageThreshold

# What a threshold is defined by, all of it checked together on create and on every change.
THRESHOLD_FIELDS = ("plan", "customer", "meter", "kind", "value", "hard_cap", "name")


@dataclass(frozen=True)
class ThresholdSpec:
    kind: str
    value: Decimal
    plan: Plan | None = None
    customer: Customer | None = None
    meter: Meter | None = None
    hard_cap: bool = False
    name: str = ""


def _refused(problems: dict[str, list[str]]) -> InvalidOperation:
    return InvalidOperation(_("The threshold is not valid."), code="threshold_invalid", extra={"fields": problems})


def _spec_problems(spec: ThresholdSpec) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if (spec.plan is None) == (spec.customer is None):
        problems["plan"] = [_("Give a plan (every customer on it) or a customer, not both and not neither.")]
    if spec.kind == ThresholdKind.CREDIT_BALANCE:
        if spec.meter is not None:
            problems["meter"] = [_("A credit-balance threshold watches the balance, not a meter.")]
        if spec.hard_cap:
            problems["hard_cap"] = [_("The credit ledger already refuses a debit below zero: a credit-balance "
                                      "threshold alerts only.")]
    elif spec.meter is None:
        problems["meter"] = [_("Name the meter this threshold watches.")]
    if spec.value < 0:
        problems["value"] = [_("The level cannot be negative.")]
    return problems


def usage_threshold_create(*, spec: ThresholdSpec) -> UsageThreshold:
    if problems := _spec_problems(spec):
        raise _refused(problems)
    return UsageThreshold.objects.create(plan=spec.plan, customer=spec.customer, meter=spec.meter, kind=spec.kind,
                                         value=spec.value, hard_cap=spec.hard_cap, name=spec.name)


@transaction.atomic
def usage_threshold_update(*, threshold: UsageThreshold, changes: dict) -> UsageThreshold:
    """Apply `changes` (any of THRESHOLD_FIELDS) and check the threshold they leave as a whole. Alerts
    already written stay as they were: they record what was crossed then."""
    threshold = UsageThreshold.objects.select_for_update().get(pk=threshold.pk)
    current = {name: getattr(threshold, name) for name in THRESHOLD_FIELDS}
    spec = ThresholdSpec(**{**current, **{k: v for k, v in changes.items() if k in THRESHOLD_FIELDS}})
    if problems := _spec_problems(spec):
        raise _refused(problems)
    for name in THRESHOLD_FIELDS:
        setattr(threshold, name, getattr(spec, name))
    threshold.save()
    return threshold


def usage_threshold_delete(*, threshold: UsageThreshold) -> None:
    """Its alerts go with it (they name it); the usage and the ledger they were about stay."""
    threshold.delete()
