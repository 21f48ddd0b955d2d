"""Concurrent subscribers against real PostgreSQL connections (one per thread)."""

import threading

import pytest
from django.db import close_old_connections, connection

from billing_project.tests.threads import run_threads
from core.audit import Actor
from core.exceptions import IllegalTransition
from subscriptions.models import Subscription
from subscriptions.services import subscription_create
from subscriptions.tests.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_subscribe_requests_create_one_subscription_and_refuse_the_rest_cleanly():
    customer, plan = CustomerFactory(), PlanFactory(amount=0)
    barrier = threading.Barrier(6)
    results = []

    def subscribe():
        try:
            close_old_connections()
            barrier.wait()
            results.append(subscription_create(customer=customer, plan=plan, actor=Actor.system("test")))
        except Exception as exc:  # collected, and asserted on below
            results.append(exc)
        finally:
            connection.close()

    run_threads([subscribe] * 6, join_timeout=60)

    created = [r for r in results if isinstance(r, Subscription)]
    refused = [r for r in results if not isinstance(r, Subscription)]
    assert len(created) == 1
    # The customer row lock turns the race into the domain error, never an IntegrityError (a 500).
    assert len(refused) == 5 and all(isinstance(r, IllegalTransition) for r in refused)
    assert Subscription.objects.filter(customer=customer).count() == 1
