"""The email log: one row per (event, recipient), the guard that makes every email go out at most once."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class EmailStatus(models.TextChoices):
    # Written with the rendered message, before any attempt.
    PENDING = "pending", _("Pending")
    # Committed before the backend is called: a retry that finds it does not send again (at most once).
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    # The backend refused the last attempt: the job retries with backoff, and staff may resend.
    FAILED = "failed", _("Failed")


class EmailLog(models.Model):
    """An email the system decided to send, with exactly what it said.

    The message is stored rendered so the log shows what the customer got and a resend repeats it
    word for word even after the invoice or the templates changed."""

    # What caused the email ("invoice_finalized:42"): with the recipient, the unique key of the row, so a
    # retried or repeated job finds the row instead of sending a second copy.
    event_key = models.CharField(_("event key"), max_length=200)
    recipient = models.EmailField(_("recipient"), max_length=254)
    # The template under templates/emails/ it was rendered from; lets staff filter the log by kind.
    kind = models.CharField(_("kind"), max_length=64, db_index=True)
    subject = models.CharField(_("subject"), max_length=300)
    body_text = models.TextField(_("body text"))
    body_html = models.TextField(_("body html"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=EmailStatus.choices, default=EmailStatus.PENDING)
    # Backend attempts so far (automatic and resends): how hard delivery was.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # The backend's last refusal, for staff deciding whether a resend can work.
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    # Times staff sent it again from the admin (each is a deliberate second copy, outside the at-most-once).
    resend_count = models.PositiveIntegerField(_("resend count"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("email log")
        verbose_name_plural = _("email logs")
        ordering = ["-created_at", "-id"]
        permissions = [("resend_emaillog", "Can resend an email")]
        constraints = [
            models.UniqueConstraint(fields=["event_key", "recipient"], name="email_once_per_event_recipient"),
            models.CheckConstraint(condition=models.Q(status__in=EmailStatus.values), name="email_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient}"
