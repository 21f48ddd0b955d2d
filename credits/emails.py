"""The "credits low" email (and its outbound webhook): sent after a debit takes a balance below
CREDITS_LOW_THRESHOLD."""

from django.conf import settings

from core.jobs import job_defer
from credits.models import CreditLedgerEntry
from credits.webhooks import credits_low_webhook_emit
from notifications.models import EmailLog
from notifications.services import EmailSpec, email_send_once

CREDITS_LOW_TASK = "credits.credits_low_email"


def credits_low_check(*, balance_before: int, entry: CreditLedgerEntry) -> None:
    """Inside the debit's transaction: a debit crossing the threshold defers the email (never sent if the
    debit rolls back); debits that stay below it send nothing more."""
    threshold = settings.CREDITS_LOW_THRESHOLD
    if balance_before >= threshold > entry.balance_after:
        job_defer(name=CREDITS_LOW_TASK, ledger_entry_id=entry.pk)
        credits_low_webhook_emit(entry=entry)


def credits_low_email_send(*, ledger_entry_id: int) -> EmailLog:
    entry = CreditLedgerEntry.objects.select_related("customer").get(pk=ledger_entry_id)
    return email_send_once(spec=EmailSpec(
        language=entry.customer.preferred_language,
        event_key=f"credits_low:{entry.pk}", recipient=entry.customer.email, kind="credits_low",
        context={"customer": entry.customer, "balance": entry.balance_after,
                 "threshold": settings.CREDITS_LOW_THRESHOLD}))
