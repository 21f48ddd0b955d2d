"""The forecast as a document (`billing preview --all --json`), read back and compared (`--diff FILE`):
what changed between an earlier forecast and now, per day and currency and per invoice."""

import json
from datetime import datetime
from pathlib import Path

from django.utils.translation import gettext as _

from core.exceptions import BillingError
from core.money import format_money
from payments.billing.forecast import ForecastInvoice, forecast_by_day

FORECAST_FORMAT = 1


class ForecastFileInvalid(BillingError):
    code = "forecast_file_invalid"


def forecast_document(*, now: datetime, days: int, invoices: list[ForecastInvoice]) -> dict:
    return {
        "format": FORECAST_FORMAT, "as_of": now.isoformat(), "days": days,
        "by_day": [{"day": d.day.isoformat(), "currency": d.currency, "invoices": d.invoices, "total": d.total}
                   for d in forecast_by_day(invoices=invoices)],
        "invoices": [{"subscription": i.subscription_id, "customer": i.customer_id, "currency": i.currency,
                      "issue_at": i.issue_at.isoformat(), "kind": i.kind, "billing_reason": i.billing_reason,
                      "total": i.total} for i in invoices],
    }


def forecast_json(document: dict) -> str:
    return json.dumps(document, indent=1, sort_keys=True)


def forecast_document_read(*, path: str) -> dict:
    """An earlier `--json` forecast; anything else is one clear error."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ForecastFileInvalid(_("--diff %(path)s: cannot read it (%(error)s).")
                                  % {"path": path, "error": exc.strerror}) from None
    except (ValueError, UnicodeDecodeError):
        raise ForecastFileInvalid(_("--diff %(path)s: not JSON; write it with `billing preview --all --json`.")
                                  % {"path": path}) from None
    try:
        valid = (document["format"] == FORECAST_FORMAT
                 and all(isinstance(d["day"], str) and isinstance(d["currency"], str)
                         and isinstance(d["invoices"], int) and isinstance(d["total"], int) for d in document["by_day"])
                 and all(isinstance(i["subscription"], int) and isinstance(i["issue_at"], str)
                         and isinstance(i["currency"], str) and isinstance(i["total"], int)
                         for i in document["invoices"]))
    except (KeyError, TypeError):
        valid = False
    if not valid:
        raise ForecastFileInvalid(_("--diff %(path)s: not a forecast written by `billing preview --all --json`.")
                                  % {"path": path})
    return document


def forecast_lines(document: dict) -> list[str]:
    lines = [f"Invoices the billing run will issue from {document['as_of']} for {document['days']} days:"]
    for day in document["by_day"]:
        lines.append(f"  {day['day']}  {day['currency']}  {day['invoices']:>7} invoices  "
                     f"{format_money(day['total'], day['currency']):>20}")
    totals: dict[str, list[int]] = {}
    for day in document["by_day"]:
        figures = totals.setdefault(day["currency"], [0, 0])
        figures[0] += day["invoices"]
        figures[1] += day["total"]
    for currency, (count, total) in sorted(totals.items()):
        lines.append(f"Total {currency}: {count} invoices, {format_money(total, currency)}")
    if not totals:
        lines.append("No invoices due in this window.")
    return lines


def _day_key(row: dict) -> tuple[str, str]:
    return row["day"], row["currency"]


def _invoice_key(row: dict) -> tuple[int, str]:
    return row["subscription"], row["issue_at"][:10]


def forecast_diff(*, earlier: dict, current: dict) -> list[str]:
    """One line per day and currency whose figures moved and per invoice added, removed or changed, then
    a summary line."""
    lines = [f"Forecast of {current['as_of']} ({current['days']} days) against {earlier['as_of']} "
             f"({earlier['days']} days):"]
    old_days, new_days = ({_day_key(r): r for r in doc["by_day"]} for doc in (earlier, current))
    for key in sorted(old_days.keys() | new_days.keys()):
        old, new = old_days.get(key, {"invoices": 0, "total": 0}), new_days.get(key, {"invoices": 0, "total": 0})
        if (old["invoices"], old["total"]) != (new["invoices"], new["total"]):
            lines.append(f"  {key[0]} {key[1]}: {old['invoices']} -> {new['invoices']} invoices, "
                         f"{format_money(old['total'], key[1])} -> {format_money(new['total'], key[1])}")
    old_invoices, new_invoices = ({_invoice_key(r): r for r in doc["invoices"]} for doc in (earlier, current))
    added = sorted(new_invoices.keys() - old_invoices.keys())
    removed = sorted(old_invoices.keys() - new_invoices.keys())
    changed = sorted(k for k in old_invoices.keys() & new_invoices.keys()
                     if old_invoices[k]["total"] != new_invoices[k]["total"])
    for label, keys, source in (("added", added, new_invoices), ("removed", removed, old_invoices)):
        lines += [f"  {label}: subscription {k[0]} on {k[1]}, "
                  f"{format_money(source[k]['total'], source[k]['currency'])}" for k in keys]
    lines += [f"  changed: subscription {k[0]} on {k[1]}, "
              f"{format_money(old_invoices[k]['total'], old_invoices[k]['currency'])} -> "
              f"{format_money(new_invoices[k]['total'], new_invoices[k]['currency'])}" for k in changed]
    lines.append(f"{len(added)} added, {len(removed)} removed, {len(changed)} changed.")
    return lines
