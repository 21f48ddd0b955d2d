"""The back office's finance reports page; the admin site (billing_project.admin_site) mounts it at
/admin/reports/. Staff need reports.view_reports, as for the API."""

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from core.l10n import babel_locale
from reports.dashboard import ReportFilterForm, dashboard_charts, dashboard_currencies


def reports_dashboard_view(request, *, admin_context: dict):
    if not request.user.has_perm("reports.view_reports"):
        raise PermissionDenied
    form = ReportFilterForm(request.GET)  # no parameters: the defaults (the last twelve months)
    valid = form.is_valid()
    period = form.cleaned_data["range"] if valid else None
    context = {**admin_context, "title": _("Finance reports"), "form": form, "period": period,
               # Chart.js formats its axis numbers with this BCP 47 locale, the one amounts are written in.
               "chart_locale": str(babel_locale()).replace("_", "-"),
               "currencies": dashboard_currencies(),
               "charts": dashboard_charts(period=period) if valid else []}
    return TemplateResponse(request, "admin/reports/dashboard.html", context, status=200 if valid else 400)
