"""The email log in the admin: read-only, and a resend action behind its own permission."""

import pytest
from django.core import mail

from billing_project.tests.admin_helpers import changelist_url, messages_of, post_action, staff_user
from core.tests.jobs_support import jobs_run_queued
from notifications.models import EmailLog
from notifications.services import EmailSpec, email_send_once


@pytest.fixture
def sent(db) -> EmailLog:
    class Customer:
        name = "Ada"

    return email_send_once(spec=EmailSpec(event_key="credits_low:9", recipient="ada@example.com", kind="credits_low",
                                          context={"customer": Customer(), "balance": 1, "threshold": 100}))


def test_staff_who_may_view_see_the_log_but_cannot_resend(client, sent):
    client.force_login(staff_user("notifications.view_emaillog"))
    page = client.get(changelist_url(EmailLog))
    assert page.status_code == 200 and b"ada@example.com" in page.content
    assert b'value="resend"' not in page.content
    post_action(client, EmailLog, "resend", [sent])
    assert jobs_run_queued(task_name="notifications.email_resend") == 0


def test_resend_queues_a_copy_that_the_job_sends(client, sent):
    client.force_login(staff_user("notifications.view_emaillog", "notifications.resend_emaillog"))
    response = post_action(client, EmailLog, "resend", [sent])
    assert messages_of(response) == ["1 email(s) will be sent again."]
    mail.outbox.clear()
    assert jobs_run_queued(task_name="notifications.email_resend") == 1
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    sent.refresh_from_db()
    assert sent.resend_count == 1


def test_the_log_cannot_be_edited_or_deleted(client, sent):
    client.force_login(staff_user("notifications.view_emaillog", "notifications.change_emaillog",
                                  "notifications.delete_emaillog"))
    assert client.post(f"/admin/notifications/emaillog/{sent.pk}/change/", {"subject": "x"}).status_code == 403
    assert client.post(f"/admin/notifications/emaillog/{sent.pk}/delete/", {"post": "yes"}).status_code == 403
    sent.refresh_from_db()
    assert sent.subject.startswith("Your credit balance")
