"""Emails go out at most once per (event, recipient), whatever retries, repeats or failures happen."""

import pytest
from django.core import mail
from django.db import transaction

from core.audit import Actor
from modules.services import module_disable
from notifications.models import EmailLog, EmailStatus
from notifications.services import EmailSpec, email_resend, email_send_once


class Customer:
    """What the email templates read of a customer (this app sits below the one that has customers)."""

    name = "Ada Lovelace"


def _spec(event_key: str = "credits_low:1", recipient: str = "ada@example.com") -> EmailSpec:
    return EmailSpec(event_key=event_key, recipient=recipient, kind="credits_low",
                     context={"customer": Customer(), "balance": 40, "threshold": 100})


class RefusingBackend:
    """An email backend whose server refuses every message."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("the SMTP server said no")


@pytest.mark.django_db
def test_an_email_is_rendered_from_its_templates_in_text_and_html_and_logged_sent():
    log = email_send_once(spec=_spec())
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Your credit balance is low: 40 left"
    assert "fell to 40 credits, below 100" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "<strong>40</strong>" in html and "Hello Ada Lovelace" in html
    log.refresh_from_db()
    assert (log.status, log.attempts, log.kind) == (EmailStatus.SENT, 1, "credits_low")
    assert log.sent_at is not None and log.body_text == message.body


@pytest.mark.django_db
def test_a_repeated_job_sends_nothing_more_for_the_same_event_and_recipient():
    for _ in range(3):
        email_send_once(spec=_spec())
    email_send_once(spec=_spec(recipient="grace@example.com"))  # another recipient of the same event
    email_send_once(spec=_spec(event_key="credits_low:2"))  # another event
    assert len(mail.outbox) == 3
    assert EmailLog.objects.filter(event_key="credits_low:1").count() == 2


@pytest.mark.django_db
def test_an_email_claimed_by_a_worker_that_died_is_never_sent_again_automatically():
    first = email_send_once(spec=_spec())
    EmailLog.objects.filter(pk=first.pk).update(status=EmailStatus.SENDING)  # as a worker killed mid-send leaves it
    mail.outbox.clear()
    email_send_once(spec=_spec())
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_refused_email_is_marked_failed_and_the_retry_sends_it(settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    with pytest.raises(ConnectionRefusedError):
        email_send_once(spec=_spec())  # the job fails, so the engine retries it later
    log = EmailLog.objects.get()
    assert (log.status, log.attempts, log.last_error) == (EmailStatus.FAILED, 1, "the SMTP server said no")

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    email_send_once(spec=_spec())
    log.refresh_from_db()
    assert (log.status, log.attempts, log.last_error) == (EmailStatus.SENT, 2, "")
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_logged_email_rolled_back_with_its_transaction_is_forgotten():
    with pytest.raises(RuntimeError), transaction.atomic():
        email_send_once(spec=_spec())
        raise RuntimeError("the caller failed")
    assert not EmailLog.objects.exists()


@pytest.mark.django_db
def test_a_resend_sends_the_logged_message_word_for_word():
    log = email_send_once(spec=_spec())
    email_resend(email_log_id=log.pk)
    first, second = mail.outbox
    assert (second.subject, second.body, second.to) == (first.subject, first.body, first.to)
    log.refresh_from_db()
    assert (log.status, log.attempts, log.resend_count) == (EmailStatus.SENT, 2, 1)


@pytest.mark.django_db
def test_the_log_refuses_a_second_row_for_the_same_event_and_recipient():
    from django.db import IntegrityError

    email_send_once(spec=_spec())
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailLog.objects.create(event_key="credits_low:1", recipient="ada@example.com", kind="credits_low",
                                subject="again", body_text="again")


@pytest.mark.django_db
def test_the_text_part_and_subject_are_plain_text_and_only_the_html_part_is_escaped():
    class Named:
        name = "O'Brien & <Sons>"

    email_send_once(spec=EmailSpec(event_key="credits_low:7", recipient="ob@example.com", kind="credits_low",
                                   context={"customer": Named(), "balance": "1 < 2", "threshold": 100}))
    [message] = mail.outbox
    assert "Hello O'Brien & <Sons>," in message.body and message.subject.endswith("1 < 2 left")
    assert "O&#x27;Brien &amp; &lt;Sons&gt;" in message.alternatives[0][0]


@pytest.mark.django_db
def test_with_the_notifications_module_switched_off_nothing_is_sent_or_logged():
    module_disable(code="notifications", actor=Actor.system("test"))

    assert email_send_once(spec=_spec()) is None
    assert mail.outbox == [] and not EmailLog.objects.exists()
