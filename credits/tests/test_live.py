"""The credits live topic's events: published once a debit commits (at once for a debit on its own, which
is its own transaction), never for a debit rolled back with its caller."""

import pytest
from django.db import transaction

from core.audit import Actor
from credits.models import CreditSource
from credits.services import credit_debit, credit_grant
from modules.topics import group_customer, group_staff
from subscriptions.tests.factories import CustomerFactory

ACTOR = Actor.system("test")


@pytest.fixture
def published(monkeypatch):
    events = []
    monkeypatch.setattr("modules.topics.live_event_publish", events.append)
    return events


@pytest.mark.django_db(transaction=True)
def test_a_debit_on_its_own_publishes_its_entry_once_committed(published):
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=10, source=CreditSource.PURCHASE, actor=ACTOR)
    published.clear()

    write = credit_debit(customer=customer, amount=3, actor=ACTOR)

    [sent] = published
    assert sent.groups == (group_customer("credits", customer.pk), group_staff("credits"))
    assert f'"id": {write.entry.pk}' in sent.message["text"] and '"balance_after": 7' in sent.message["text"]


@pytest.mark.django_db(transaction=True)
def test_a_debit_rolled_back_with_its_caller_publishes_nothing(published):
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=10, source=CreditSource.PURCHASE, actor=ACTOR)
    published.clear()

    with pytest.raises(RuntimeError), transaction.atomic():
        credit_debit(customer=customer, amount=3, actor=ACTOR)
        raise RuntimeError("the caller fails after the debit")
    with transaction.atomic():
        credit_debit(customer=customer, amount=4, actor=ACTOR)
        assert published == []  # not before the commit

    [sent] = published
    assert '"amount": -4' in sent.message["text"]
