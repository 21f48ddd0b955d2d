"""The finance reports page of the back office (/admin/reports/): a date-range and currency picker, and
five charts (MRR, revenue by month stacked by method, subscriptions by plan, churn, receivables aging),
each also as a table. The figures come from reports.selectors; this module only lays them out for the
template (tables, formatted) and for Chart.js (plain numbers in major units)."""

from datetime import UTC, datetime, time

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.command_args import CLOCK_MAX, CLOCK_MIN
from core.l10n import format_date
from core.money import format_money, to_major
from payments.models import PaymentMethod
from reports.selectors import (
    AGE_BUCKETS,
    MOVEMENTS,
    ReportRange,
    report_churn,
    report_collected_by_month_and_method,
    report_mrr,
    report_receivables,
    report_subscriptions,
)
from reports.selectors.periods import month_start
from subscriptions.models import Customer
from subscriptions.periods import add_months


class ReportFilterForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text=_("First day included (UTC)."))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
                          help_text=_("First day not included (UTC)."))
    currency = forms.RegexField(label=_("Currency"), regex=r"^[A-Z]{3}\Z", required=False, max_length=3,
                                help_text=_("Amounts are never converted: one currency at a time."))

    def clean(self):
        data = super().clean()
        start, end = (datetime.combine(data[k], time(0), tzinfo=UTC) if data.get(k) else None for k in ("start", "end"))
        for name, instant in (("start", start), ("end", end)):
            if instant is not None and not CLOCK_MIN <= instant < CLOCK_MAX:
                self.add_error(name, _("Between %(min)s and %(max)s, as the billing clock.")
                               % {"min": f"{CLOCK_MIN:%Y-%m-%d}", "max": f"{CLOCK_MAX:%Y-%m-%d}"})
                return data
        end_at = end or add_months(month_start(timezone.now()), 1)
        start_at = start or max(add_months(end_at, -12), CLOCK_MIN)
        if start_at >= end_at:
            self.add_error("end", "The end must be after the start.")
        elif add_months(start_at, 120) < end_at:
            self.add_error("start", "At most 120 months.")
        data["range"] = ReportRange(start=start_at, end=end_at,
                                    currency=data.get("currency") or settings.DEFAULT_CURRENCY)
        return data


def dashboard_currencies() -> list[str]:
    """The currencies customers are billed in, for the picker."""
    found = set(Customer.objects.values_list("currency", flat=True).distinct())
    return sorted(found | {settings.DEFAULT_CURRENCY})


def _major(amount: int, currency: str) -> float:
    """Chart.js draws numbers; the tables beside each chart show the exact formatted amounts."""
    return float(to_major(amount, currency))


def _percent(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.2f} %"


def _mrr_chart(period: ReportRange) -> dict:
    currency = period.currency
    points = [p for p in report_mrr(period=period) if p.currency == currency]
    return {
        "id": "mrr", "title": _("MRR at each month end"), "type": "line",
        "labels": [_month_label(p.start) for p in points],
        "datasets": [{"label": _("MRR (%(currency)s)") % {"currency": currency},
                      "data": [_major(p.mrr_end, currency) for p in points]}],
        "headers": [_("Month"), _("MRR at end"), *[m.capitalize() for m in MOVEMENTS]],
        "rows": [[p.start.strftime("%Y-%m"), format_money(p.mrr_end, currency),
                  *[format_money(p.movements[m], currency) for m in MOVEMENTS]] for p in points],
    }


def _month_label(start: datetime) -> str:
    """A chart's month in the reader's language and digits ("Jan 2026", "يناير ٢٠٢٦"); tables keep YYYY-MM."""
    return format_date(start.date(), style="MMM y")


def _revenue_chart(period: ReportRange) -> dict:
    currency = period.currency
    rows = report_collected_by_month_and_method(period=period)
    months = sorted({r.month[:7] for r in rows})
    methods = [m for m in PaymentMethod.values if any(r.method == m for r in rows)]
    amounts = {(r.month[:7], r.method): r.amount for r in rows}
    labels = dict(PaymentMethod.choices)
    return {
        "id": "revenue", "title": _("Collected by month, stacked by payment method"), "type": "bar", "stacked": True,
        "labels": [_month_label(datetime.strptime(month, "%Y-%m")) for month in months],
        "datasets": [{"label": labels[m], "data": [_major(amounts.get((month, m), 0), currency) for month in months]}
                     for m in methods],
        "headers": [_("Month"), *[labels[m] for m in methods], _("Total")],
        "rows": [[month, *[format_money(amounts.get((month, m), 0), currency) for m in methods],
                  format_money(sum(amounts.get((month, m), 0) for m in methods), currency)] for month in months],
    }


def _plans_chart(period: ReportRange) -> dict:
    counts = report_subscriptions(at=period.end, currency=period.currency)
    return {
        "id": "plans", "type": "bar",
        "title": _("Live subscriptions by plan on %(date)s") % {"date": format_date(period.end)},
        "labels": [p.plan for p in counts.by_plan],
        "datasets": [{"label": _("Subscriptions"), "data": [p.count for p in counts.by_plan]}],
        "headers": [_("Plan"), _("Subscriptions")], "rows": [[p.plan, p.count] for p in counts.by_plan],
    }


def _churn_chart(period: ReportRange) -> dict:
    rows = [r for r in report_churn(period=period) if r.currency == period.currency]
    return {
        "id": "churn", "title": _("Churn rate per month"), "type": "line", "percent": True,
        "labels": [_month_label(r.start) for r in rows],
        "datasets": [
            {"label": _("Logo churn %"), "data": [float(r.logo_churn_rate or 0) * 100 for r in rows]},
            {"label": _("Revenue churn %"), "data": [float(r.revenue_churn_rate or 0) * 100 for r in rows]},
        ],
        "headers": [_("Month"), _("Paying at start"), _("Churned"), _("Logo churn"), _("Revenue churn")],
        "rows": [[r.start.strftime("%Y-%m"), r.customers_start, r.customers_churned, _percent(r.logo_churn_rate),
                  _percent(r.revenue_churn_rate)] for r in rows],
    }


BUCKET_LABELS = {"current": _("Current"), "1-30": _("1-30 days"), "31-60": _("31-60 days"),
                 "61-90": _("61-90 days"), "over_90": _("Over 90 days")}


def _receivables_chart(period: ReportRange) -> dict:
    currency = period.currency
    rows = {r.bucket: r for r in report_receivables(period=period) if r.currency == currency}
    buckets = [name for name, _ in AGE_BUCKETS]
    return {
        "id": "receivables", "type": "bar",
        "title": _("Open invoices by days past due on %(date)s") % {"date": format_date(period.end)},
        "labels": [BUCKET_LABELS[b] for b in buckets],
        "datasets": [{"label": _("Amount due (%(currency)s)") % {"currency": currency},
                      "data": [_major(rows[b].amount_due if b in rows else 0, currency) for b in buckets]}],
        "headers": [_("Days past due"), _("Invoices"), _("Amount due")],
        "rows": [[BUCKET_LABELS[b], rows[b].count if b in rows else 0,
                  format_money(rows[b].amount_due if b in rows else 0, currency)] for b in buckets],
    }


def dashboard_charts(*, period: ReportRange) -> list[dict]:
    """Every chart of the page, in order, for one currency."""
    return [_mrr_chart(period), _revenue_chart(period), _plans_chart(period), _churn_chart(period),
            _receivables_chart(period)]
