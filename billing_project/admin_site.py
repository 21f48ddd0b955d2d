"""The back office: Django's admin site titled for billing, with the staff dashboard at /admin/dashboard/.

The project package is the composition root (like urls.py), so it may use the apps' selectors here.
"""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from core.api.throttling import login_attempt_wait
from core.money import format_money
from modules.selectors import admin_models_hidden, dashboard_panels_hidden
from payments.selectors import DASHBOARD_COLLECTED_DAYS, dashboard_figures
from reports.admin_views import reports_dashboard_view
from subscriptions.models import SubscriptionStatus


class BillingAdminSite(admin.AdminSite):
    site_header = _("Billing back office")
    site_title = _("Billing back office")
    index_title = _("Back office")

    @method_decorator(never_cache)
    @login_not_required
    def login(self, request, extra_context=None):
        """Django's admin login, with password guesses limited like the API token endpoint's (per
        username and per client address; the same counters, so switching doors buys nothing)."""
        if request.method == "POST" and (wait := login_attempt_wait(request=request)) is not None:
            context = {**self.each_context(request), "title": _("Too many sign-in attempts"), "retry_after": wait,
                       "login_url": request.get_full_path()}
            response = TemplateResponse(request, "admin/billing/login_throttled.html", context, status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().login(request, extra_context)

    def get_app_list(self, request, app_label=None):
        """Django's app list without the entries of disabled modules (their pages answer 404 too:
        modules.middleware)."""
        apps = super().get_app_list(request, app_label)
        if not apps:  # signed out (the login page): nothing to hide, and no need to ask
            return apps
        hidden = admin_models_hidden()
        for app in apps:
            app["models"] = [m for m in app["models"] if f"{app['app_label']}.{m['object_name'].lower()}" not in hidden]
        return [app for app in apps if app["models"]]

    def get_urls(self):
        return [
            path("dashboard/", self.admin_view(self.dashboard_view), name="billing_dashboard"),
            path("reports/", self.admin_view(self.reports_view), name="finance_reports"),
            *super().get_urls(),
        ]

    def reports_view(self, request):
        if "finance_reports" in dashboard_panels_hidden():
            raise Http404(_("The finance reports module is disabled."))
        return reports_dashboard_view(request, admin_context=self.each_context(request))

    def dashboard_view(self, request):
        figures = dashboard_figures()
        labels = dict(SubscriptionStatus.choices)
        context = {
            **self.each_context(request),
            "title": _("Billing dashboard"),
            # Panels of disabled modules are left out (docs/modules.md).
            "panels_hidden": dashboard_panels_hidden(),
            "figures": figures,
            "collected_days": DASHBOARD_COLLECTED_DAYS,
            "mrr": [{"currency": c, "amount": format_money(a, c)} for c, a in figures.mrr.items()],
            "subscriptions_by_status": [
                {"status": status, "label": labels[status], "count": count}
                for status, count in figures.subscriptions_by_status.items()
            ],
            "receivables": [
                {"currency": r.currency, "open_count": r.open_count,
                 "open_amount": format_money(r.open_amount, r.currency), "past_due_count": r.past_due_count,
                 "past_due_amount": format_money(r.past_due_amount, r.currency)}
                for r in figures.receivables
            ],
            "collected": [
                {"currency": c.currency, "count": c.count, "gross": format_money(c.gross, c.currency),
                 "refunded": format_money(c.refunded, c.currency), "net": format_money(c.net, c.currency)}
                for c in figures.collected
            ],
        }
        return TemplateResponse(request, "admin/billing/dashboard.html", context)
