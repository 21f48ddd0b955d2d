"""The outbound webhooks module (discovered by the `modules` app; docs/modules.md, docs/webhooks-outbound.md).

Switching it off closes its doors (the endpoints and delivery log API, its admin pages) and stops sending:
no new event is recorded while it is off (emits write nothing), and a queued delivery whose job runs
meanwhile is paused (left pending, `paused_at` set, no attempt counted). Switching it on again schedules
every paused delivery at once, with a fresh retry window. Events of changes made while it was off are not
sent later: nothing recorded them.
"""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from modules.definitions import ConfigField, HealthReport, ModuleDefinition
from modules.selectors import module_config
from outbound_webhooks.models import MODULE_CODE
from outbound_webhooks.selectors import webhook_endpoints_troubled
from outbound_webhooks.services import webhook_deliveries_resume

CODE = MODULE_CODE


def outbound_webhooks_health(deep: bool) -> HealthReport:
    """Degraded while an enabled endpoint has failed every attempt for longer than the configured minutes,
    or an endpoint the system disabled has not been enabled again."""
    allowed = timedelta(minutes=module_config(code=CODE)["failing_degraded_minutes"])
    troubled = webhook_endpoints_troubled(failing_before=timezone.now() - allowed)
    details = {"failing": troubled.failing, "disabled_by_system": troubled.disabled}
    if troubled.failing or troubled.disabled:
        return HealthReport(status="degraded", details=details,
                            message=_("%(failing)s endpoint(s) failing for more than %(minutes)s minutes, %(disabled)s "
                                      "disabled after failing")
                            % {"failing": len(troubled.failing), "minutes": int(allowed.total_seconds() // 60),
                               "disabled": len(troubled.disabled)})
    return HealthReport(status="ok", details=details)


MODULES = [
    ModuleDefinition(
        code=CODE, name=gettext_lazy("Outbound webhooks"), version="1.0.0", requires=("platform",),
        description=gettext_lazy("Signed, retried webhooks to the merchant's own systems, with a delivery log."),
        permissions=("outbound_webhooks.view_webhookendpoint", "outbound_webhooks.add_webhookendpoint",
                     "outbound_webhooks.change_webhookendpoint", "outbound_webhooks.view_webhookdelivery",
                     "outbound_webhooks.redeliver_webhookdelivery"),
        admin_models=("outbound_webhooks.webhookendpoint", "outbound_webhooks.webhookdelivery",
                      "outbound_webhooks.webhookevent"),
        api_prefixes=("/api/v1/webhook-endpoints/", "/api/v1/webhook-deliveries/"),
        config=(ConfigField(name="failing_degraded_minutes", kind="int", default=60, minimum=1,
                            maximum=7 * 24 * 60,
                            help=gettext_lazy("/healthz reports outbound webhooks degraded when an enabled endpoint "
                                              "has failed every attempt for longer than this.")),),
        health_check=outbound_webhooks_health,
        on_enable=webhook_deliveries_resume,
    ),
]
