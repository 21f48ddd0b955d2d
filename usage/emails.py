"""The "usage threshold reached" email: sent once per alert (the alert itself is once per period)."""

from notifications.models import EmailLog
from notifications.services import EmailSpec, email_send_once
from usage.models import UsageAlert


def usage_alert_email_send(*, alert_id: int) -> EmailLog:
    alert = UsageAlert.objects.select_related("customer", "threshold__meter").get(pk=alert_id)
    return email_send_once(spec=EmailSpec(
        language=alert.customer.preferred_language,
        event_key=f"usage_alert:{alert.pk}", recipient=alert.customer.email, kind="usage_threshold_reached",
        context={"customer": alert.customer, "alert": alert, "threshold": alert.threshold}))
