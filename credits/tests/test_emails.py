"""The credits-low email: queued by the debit that crosses CREDITS_LOW_THRESHOLD, never by a rolled-back one."""

import pytest
from django.core import mail
from django.db import transaction

from core.audit import Actor
from core.tests.jobs_support import jobs_queued, jobs_run_queued
from credits.emails import CREDITS_LOW_TASK
from credits.models import CreditSource
from credits.services import credit_debit, credit_grant
from subscriptions.tests.factories import CustomerFactory

ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(settings):
    settings.CREDITS_LOW_THRESHOLD = 100
    customer = CustomerFactory(user=None, email="ada@example.com")
    credit_grant(customer=customer, amount=250, source=CreditSource.PURCHASE, actor=ACTOR)
    return customer


def test_only_the_debit_that_crosses_the_threshold_queues_the_email(customer):
    credit_debit(customer=customer, amount=150, actor=ACTOR)  # 250 -> 100: not below
    assert jobs_queued(task_name=CREDITS_LOW_TASK) == []
    crossing = credit_debit(customer=customer, amount=30, actor=ACTOR)  # 100 -> 70
    credit_debit(customer=customer, amount=30, actor=ACTOR)  # 70 -> 40: already low
    assert [j.args for j in jobs_queued(task_name=CREDITS_LOW_TASK)] == [{"ledger_entry_id": crossing.entry.pk}]
    jobs_run_queued(task_name=CREDITS_LOW_TASK)
    [message] = mail.outbox
    assert message.subject == "Your credit balance is low: 70 left"


def test_a_rolled_back_debit_queues_nothing(customer):
    with pytest.raises(RuntimeError), transaction.atomic():
        credit_debit(customer=customer, amount=200, actor=ACTOR)
        raise RuntimeError("the caller failed")
    assert jobs_queued(task_name=CREDITS_LOW_TASK) == []
