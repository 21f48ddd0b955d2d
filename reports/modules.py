"""The reports module (discovered by the `modules` app; docs/modules.md). Switched off, the report
endpoints answer 404 `module_disabled` and the admin's finance reports page and its dashboard link go."""

from django.utils.translation import gettext_lazy

from modules.definitions import ModuleDefinition

MODULES = [
    ModuleDefinition(
        code="reports", name=gettext_lazy("Finance reports"), version="1.0.0", requires=("invoicing",),
        description=gettext_lazy("Payment summary, revenue, MRR movements, churn, receivables, credits, usage and the "
                                 "forecast, charted in the admin (/admin/reports/) and exported as CSV."),
        permissions=("reports.view_reports",),
        api_prefixes=("/api/v1/reports/",),
        dashboard_panels=("finance_reports",),
    ),
]
