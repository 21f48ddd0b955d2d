"""Sending email: render once, record once per (event, recipient), send outside any transaction."""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from core.jobs import job_defer
from modules.selectors import module_enabled
from notifications.models import EmailLog, EmailStatus

# The job that delivers a logged email again when staff ask for it (notifications/tasks.py).
EMAIL_RESEND_TASK = "notifications.email_resend"


@dataclass(frozen=True)
class EmailSpec:
    """One email to send: what caused it, to whom, which template under templates/emails/, with what."""

    event_key: str
    recipient: str
    kind: str
    context: dict = field(default_factory=dict)
    # The reader's language (the customer's preferred one); empty: LANGUAGE_CODE, as for staff emails.
    language: str = ""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body_text: str
    body_html: str


def email_render(*, kind: str, context: dict, language: str = "") -> RenderedEmail:
    """templates/emails/<kind>_subject.txt, <kind>.txt and <kind>.html with `context` (and SITE_URL), in
    `language`: its words, its direction and its way of writing amounts and dates."""
    with translation.override(language or settings.LANGUAGE_CODE):
        return _email_render(kind=kind, context={"site_url": settings.SITE_URL, **context})


def _email_render(*, kind: str, context: dict) -> RenderedEmail:
    subject = " ".join(render_to_string(f"emails/{kind}_subject.txt", context).split())
    return RenderedEmail(subject=subject[:300], body_text=render_to_string(f"emails/{kind}.txt", context),
                         body_html=render_to_string(f"emails/{kind}.html", context))


def email_send_once(*, spec: EmailSpec) -> EmailLog | None:
    """Send `spec` unless an email for the same (event, recipient) was already sent or is being sent.

    Called by jobs, never inside a transaction (the backend is a network peer). The log row is claimed
    (status `sending`) and committed before the backend is called, so a job that is retried, repeated
    or run twice sends at most once; a worker killed while the backend was answering leaves the row
    `sending`, never sent again automatically (staff see it and may resend). A backend error marks the
    row `failed` and is raised again so the job retries with backoff. With the notifications module
    switched off nothing is sent or logged (None)."""
    if not module_enabled(code="notifications"):
        return None
    log, claimed = _email_claim(spec=spec)
    if claimed:
        _email_deliver(log=log)
    return log


def _email_claim(*, spec: EmailSpec) -> tuple[EmailLog, bool]:
    with transaction.atomic():
        log = _email_log_lock(event_key=spec.event_key, recipient=spec.recipient)
        if log is None:
            rendered = email_render(kind=spec.kind, context=spec.context, language=spec.language)
            # A concurrent job inserting the same row makes this one wait, then skip: the row is the guard.
            EmailLog.objects.bulk_create([EmailLog(
                event_key=spec.event_key, recipient=spec.recipient, kind=spec.kind, subject=rendered.subject,
                body_text=rendered.body_text, body_html=rendered.body_html)], ignore_conflicts=True)
            log = _email_log_lock(event_key=spec.event_key, recipient=spec.recipient)
        if log.status in (EmailStatus.SENDING, EmailStatus.SENT):
            return log, False
        log.status = EmailStatus.SENDING
        log.attempts += 1
        log.save(update_fields=["status", "attempts", "updated_at"])
    return log, True


def _email_log_lock(*, event_key: str, recipient: str) -> EmailLog | None:
    return EmailLog.objects.select_for_update().filter(event_key=event_key, recipient=recipient).first()


def _email_deliver(*, log: EmailLog) -> None:
    message = EmailMultiAlternatives(subject=log.subject, body=log.body_text, to=[log.recipient],
                                     from_email=settings.DEFAULT_FROM_EMAIL)
    if log.body_html:
        message.attach_alternative(log.body_html, "text/html")
    try:
        message.send()
    except Exception as exc:
        EmailLog.objects.filter(pk=log.pk).update(status=EmailStatus.FAILED, last_error=str(exc)[:500],
                                                  updated_at=timezone.now())
        raise
    now = timezone.now()
    changes = {"status": EmailStatus.SENT, "sent_at": now, "last_error": "", "updated_at": now}
    EmailLog.objects.filter(pk=log.pk).update(**changes)


def email_resend_request(*, email_log: EmailLog) -> None:
    """Staff asked for another copy: a job sends it after this transaction commits."""
    job_defer(name=EMAIL_RESEND_TASK, email_log_id=email_log.pk)


def email_resend(*, email_log_id: int) -> EmailLog:
    """Send a logged email again, word for word (a deliberate copy: outside the at-most-once guard)."""
    with transaction.atomic():
        log = EmailLog.objects.select_for_update().get(pk=email_log_id)
        log.attempts += 1
        log.resend_count += 1
        log.save(update_fields=["attempts", "resend_count", "updated_at"])
    _email_deliver(log=log)
    return log
