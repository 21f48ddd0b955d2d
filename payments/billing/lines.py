"""What a renewal invoice says: the plan fee for the new period in advance, the past period's usage
in arrears and the credit packs ordered on account. Pure functions, shared by the run (which writes)
and the preview (which does not)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from payments.models import CreditPackOrder, InvoiceLineKind
from payments.services import LineSpec, invoice_line_amount, plan_period_line
from subscriptions.models import Plan
from usage.models import MeterPrice


@dataclass(frozen=True)
class Catalog:
    """Plans and their meter prices, read once per run: a catalog is small, and batches must not re-read
    it (a plan per subscription would be a query, or a join, per row)."""

    plans: dict[int, Plan]
    prices: dict[int, list[MeterPrice]]

    def plan(self, pk: int) -> Plan:
        """A plan created after the run started is read when first met (and kept)."""
        if pk not in self.plans:
            self.plans[pk] = Plan.objects.get(pk=pk)
        return self.plans[pk]


def catalog_load() -> Catalog:
    prices: dict[int, list[MeterPrice]] = {}
    for price in MeterPrice.objects.select_related("meter").order_by("plan_id", "meter__code", "id"):
        prices.setdefault(price.plan_id, []).append(price)
    return Catalog(plans=Plan.objects.in_bulk(), prices=prices)


def usage_lines(*, prices: list[MeterPrice], usage: dict[int, Decimal], start: datetime,
                end: datetime) -> list[LineSpec]:
    """One line per meter whose usage in [start, end) exceeds what the plan includes."""
    lines = []
    for price in prices:
        used = usage.get(price.meter_id, Decimal(0))
        billable = used - price.included_units
        if billable <= 0 or price.unit_amount <= 0:
            continue
        meter = price.meter
        description = f"{meter.name}: {billable.normalize():f} {meter.unit}"
        if price.included_units:
            description += f" beyond {price.included_units.normalize():f} included"
        lines.append(LineSpec(kind=InvoiceLineKind.USAGE, description=description, unit_amount=price.unit_amount,
                              quantity=billable, period_start=start, period_end=end, meter_id=price.meter_id,
                              metadata={"meter": meter.code, "used": str(used)}))
    return lines


def period_lines(*, fee_plan: Plan | None, fee_start: datetime | None, fee_end: datetime | None,
                 prices: list[MeterPrice], usage: dict[int, Decimal], usage_start: datetime | None,
                 usage_end: datetime | None) -> list[LineSpec]:
    """The lines of a period invoice. A free plan's fee is no line (so a free plan without billable usage
    renews with no invoice at all)."""
    lines = []
    if fee_plan is not None and fee_plan.amount > 0:
        lines.append(plan_period_line(plan=fee_plan, start=fee_start, end=fee_end))
    if usage_start is not None:
        lines += usage_lines(prices=prices, usage=usage, start=usage_start, end=usage_end)
    return lines


def lines_subtotal(lines: list[LineSpec]) -> int:
    return sum(invoice_line_amount(quantity=line.quantity, unit_amount=line.unit_amount) for line in lines)


def credit_pack_lines(*, orders: list[CreditPackOrder]) -> list[LineSpec]:
    """One line per credit pack ordered on account; the order id in the metadata is what the
    `invoice_line_credit_pack_order_once` constraint keeps unique."""
    return [LineSpec(kind=InvoiceLineKind.CREDIT_PACK, description=f"Credit pack {o.pack_code}: {o.credits} credits",
                     unit_amount=Decimal(o.amount), credits=o.credits,
                     metadata={"credit_pack_order": o.pk, "pack": o.pack_code})
            for o in orders]
