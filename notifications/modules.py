"""The notifications module (discovered by the `modules` app; docs/modules.md). Switched off, no email is
sent or logged (jobs that would send one end without sending) and the email log leaves the admin."""

from django.utils.translation import gettext_lazy

from modules.definitions import ModuleDefinition

MODULES = [
    ModuleDefinition(
        code="notifications", name=gettext_lazy("Emails"), version="1.0.0", requires=("platform",),
        description=gettext_lazy("Invoice, receipt, payment failed, final notice, cancellation, trial ending and "
                                 "credits low emails, at most once per event and recipient, with a log staff can "
                                 "resend from."),
        permissions=("notifications.view_emaillog", "notifications.resend_emaillog"),
        admin_models=("notifications.emaillog",),
    ),
]
