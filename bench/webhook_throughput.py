"""Signed Stripe webhook deliveries per second through /webhooks/stripe/ (verify, store, lock, apply).

Runs against a throwaway test database on DATABASE_URL (PostgreSQL), created and dropped here.
Reference measured in the same run: the same number of GET /healthz (request overhead plus two small
queries), so the figure reads as "how much dearer is a webhook than the cheapest request".

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing python bench/webhook_throughput.py [N]
"""

import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def main(count: int) -> None:
    logging.disable(logging.INFO)  # one line per duplicate would drown the figures
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from core.audit import Actor
        from payments.models import Payment, PaymentMethod, PaymentStatus
        from payments.services import subscription_start
        from payments.tests.factories import StripeCustomerFactory
        from payments.tests.stripe_support import (
            WEBHOOK_SECRET,
            deliver,
            new_id,
            payment_intent_object,
            stripe_account_id,
            stripe_event,
        )
        from subscriptions.tests.factories import PlanFactory

        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        actor = Actor.system("bench")
        plan = PlanFactory(amount=1000, trial_days=0)
        events = []
        for _ in range(count):
            customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
            _, invoice = subscription_start(customer=customer, plan=plan, actor=actor, with_trial=False)
            payment = Payment.objects.create(customer=customer, invoice=invoice, amount=invoice.amount_due,
                                             currency="USD", method=PaymentMethod.STRIPE, provider="stripe",
                                             provider_payment_id=new_id("pi"))
            events.append(stripe_event("payment_intent.succeeded", payment_intent_object(
                id=payment.provider_payment_id, amount=payment.amount, status="succeeded",
                customer=stripe_account_id(customer), latest_charge=new_id("ch"))))
        client = Client()

        started = time.perf_counter()
        for _ in range(count):
            assert client.get("/healthz").status_code == 200
        reference = count / (time.perf_counter() - started)

        started = time.perf_counter()
        for event in events:
            assert deliver(client, event).json()["status"] == "processed"
        measured = count / (time.perf_counter() - started)

        started = time.perf_counter()
        for event in events:
            assert deliver(client, event).json()["duplicate"] is True
        duplicates = count / (time.perf_counter() - started)

        assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == count
        print(f"payment_intent.succeeded deliveries (verify, store, apply, invoice paid, subscription active): "
              f"{measured:.0f}/s")
        print(f"duplicate deliveries (verify, refused by the unique event id): {duplicates:.0f}/s")
        print(f"reference, GET /healthz in the same run: {reference:.0f}/s")
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
