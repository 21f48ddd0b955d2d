"""Reads of the email log."""

from django.db.models import QuerySet

from notifications.models import EmailLog


def email_logs_for_event(*, event_key: str) -> QuerySet[EmailLog]:
    return EmailLog.objects.filter(event_key=event_key).order_by("pk")
