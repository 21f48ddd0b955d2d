"""The forecast as a document (`billing preview --all --json`), read back and compared (`--diff FILE`):
what changed between an earlier forecast and now, per day and currency and per invoice."""

import json
from datetime import datetime
from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.exceptions import BillingError
from core.l10n import format_number
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


def _invoices(count: int) -> str:
    """"7 invoices", the count right-aligned so the table's columns line up in every language."""
    return ngettext("%(count)s invoice", "%(count)s invoices", count) % {"count": f"{format_number(count):>7}"}


def forecast_lines(document: dict) -> list[str]:
    """The forecast as a table for an operator, in the active language (dates stay ISO, currencies codes)."""
    days = document["days"]
    lines = [ngettext("Invoices the billing run will issue from %(as_of)s for %(days)s day:",
                      "Invoices the billing run will issue from %(as_of)s for %(days)s days:", days)
             % {"as_of": document["as_of"], "days": format_number(days)}]
    for day in document["by_day"]:
        lines.append(f"  {day['day']}  {day['currency']}  {_invoices(day['invoices'])}  "
                     f"{format_money(day['total'], day['currency']):>20}")
    totals: dict[str, list[int]] = {}
    for day in document["by_day"]:
        figures = totals.setdefault(day["currency"], [0, 0])
        figures[0] += day["invoices"]
        figures[1] += day["total"]
    for currency, (count, total) in sorted(totals.items()):
        lines.append(ngettext("Total %(currency)s: %(count)s invoice, %(amount)s",
                              "Total %(currency)s: %(count)s invoices, %(amount)s", count)
                     % {"currency": currency, "count": format_number(count), "amount": format_money(total, currency)})
    if not totals:
        lines.append(_("No invoices due in this window."))
    return lines


def _day_key(row: dict) -> tuple[str, str]:
    return row["day"], row["currency"]


def _invoice_key(row: dict) -> tuple[int, str]:
    return row["subscription"], row["issue_at"][:10]


def _day_lines(earlier: dict, current: dict) -> list[str]:
    old_days, new_days = ({_day_key(r): r for r in doc["by_day"]} for doc in (earlier, current))
    lines = []
    for key in sorted(old_days.keys() | new_days.keys()):
        old, new = old_days.get(key, {"invoices": 0, "total": 0}), new_days.get(key, {"invoices": 0, "total": 0})
        if (old["invoices"], old["total"]) != (new["invoices"], new["total"]):
            text = ngettext("%(day)s %(currency)s: %(old)s -> %(new)s invoice, %(old_total)s -> %(new_total)s",
                            "%(day)s %(currency)s: %(old)s -> %(new)s invoices, %(old_total)s -> %(new_total)s",
                            new["invoices"])
            lines.append("  " + text % {"day": key[0], "currency": key[1], "old": format_number(old["invoices"]),
                                        "new": format_number(new["invoices"]),
                                        "old_total": format_money(old["total"], key[1]),
                                        "new_total": format_money(new["total"], key[1])})
    return lines


def forecast_diff(*, earlier: dict, current: dict) -> list[str]:
    """One line per day and currency whose figures moved and per invoice added, removed or changed, then
    a summary line, in the active language."""
    lines = [_("Forecast of %(as_of)s (days: %(days)s) against the one of %(earlier_as_of)s (days: "
               "%(earlier_days)s):") % {"as_of": current["as_of"], "days": format_number(current["days"]),
                                        "earlier_as_of": earlier["as_of"],
                                        "earlier_days": format_number(earlier["days"])}]
    lines += _day_lines(earlier, current)
    old_invoices, new_invoices = ({_invoice_key(r): r for r in doc["invoices"]} for doc in (earlier, current))
    added = sorted(new_invoices.keys() - old_invoices.keys())
    removed = sorted(old_invoices.keys() - new_invoices.keys())
    changed = sorted(k for k in old_invoices.keys() & new_invoices.keys()
                     if old_invoices[k]["total"] != new_invoices[k]["total"])
    for template, keys, source in ((_("added: subscription %(subscription)s on %(day)s, %(amount)s"), added,
                                    new_invoices),
                                   (_("removed: subscription %(subscription)s on %(day)s, %(amount)s"), removed,
                                    old_invoices)):
        lines += ["  " + template % {"subscription": k[0], "day": k[1],
                                     "amount": format_money(source[k]["total"], source[k]["currency"])}
                  for k in keys]
    lines += ["  " + _("changed: subscription %(subscription)s on %(day)s, %(old)s -> %(new)s")
              % {"subscription": k[0], "day": k[1],
                 "old": format_money(old_invoices[k]["total"], old_invoices[k]["currency"]),
                 "new": format_money(new_invoices[k]["total"], new_invoices[k]["currency"])} for k in changed]
    lines.append(_("%(added)s added, %(removed)s removed, %(changed)s changed.")
                 % {"added": format_number(len(added)), "removed": format_number(len(removed)),
                    "changed": format_number(len(changed))})
    return lines
