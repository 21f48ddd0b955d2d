"""Signed Stripe webhook deliveries through /webhooks/stripe/: the acknowledgement in the request (verify,
store once, defer the apply job) and the apply on a real worker (`manage.py procrastinate worker`).

Runs against a throwaway test database on DATABASE_URL (PostgreSQL), created and dropped here. Measured
in one run, one web process (Django's test client, no network hop):
- reference: the same number of GET /healthz (request overhead plus two small queries), per second and
  p50/p95, so the figures read as "how much dearer is a webhook than the cheapest request";
- acknowledgements: payment_intent.succeeded deliveries answered 200 with the event stored and its job
  deferred, per second and p50/p95 per delivery;
- duplicates: the same deliveries again (refused by the unique event id, nothing deferred);
- applied: one worker process (`--concurrency` jobs at once, default 1) started on the stored events:
  events applied per second, from its first job's start to its last job's end (Procrastinate's own
  event times), and the worker's wall time including its start.
It checks every payment was applied exactly once and prints the load average (the machine may be shared).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing python bench/webhook_throughput.py [N] [--concurrency C]
"""

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
os.environ["DEBUG"] = "false"  # as in production: DEBUG keeps every statement in memory
# The test client speaks plain HTTP, as a web process behind the TLS-terminating proxy does.
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from payments.providers.inbox import PROVIDER_EVENT_APPLY_TASK  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=1000)
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at once in the one worker process")
    return parser.parse_args()


def timed(calls) -> tuple[float, list[float]]:
    """Run each call; the rate per second over all of them and each one's latency in milliseconds."""
    latencies = []
    started = time.perf_counter()
    for call in calls:
        before = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - before) * 1000)
    return len(latencies) / (time.perf_counter() - started), latencies


def p95(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[94]


def stored_events(count: int) -> list[dict]:
    """`count` open first invoices, each with the pending Stripe payment a delivery will settle."""
    from core.audit import Actor
    from payments.models import Payment, PaymentMethod
    from payments.services import subscription_start
    from payments.tests.factories import StripeCustomerFactory
    from payments.tests.stripe_support import new_id, payment_intent_object, stripe_account_id, stripe_event
    from subscriptions.tests.factories import PlanFactory

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
    return events


def worker_apply(*, database: str, concurrency: int) -> tuple[float, float]:
    """Run one worker over the queued apply jobs; (events applied per second, wall seconds with start-up)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    env = {**os.environ, "DATABASE_URL": urlunsplit(parts._replace(path=f"/{database}")),
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "procrastinate", "worker", "--queues=default", "--one-shot",
                    f"--concurrency={concurrency}"], cwd=ROOT, env=env, check=True)
    wall = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE e.type = 'succeeded'), "
                       "EXTRACT(EPOCH FROM max(e.at) FILTER (WHERE e.type = 'succeeded') "
                       "- min(e.at) FILTER (WHERE e.type = 'started')) "
                       "FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                       "WHERE j.task_name = %s", [PROVIDER_EVENT_APPLY_TASK])
        succeeded, seconds = cursor.fetchone()
    return succeeded / float(seconds), wall


def report(*, count, reference, acks, duplicates, applied, wall, concurrency) -> None:
    (ref_rate, ref_latencies), (ack_rate, ack_latencies) = reference, acks
    print(f"acknowledged payment_intent.succeeded deliveries (verify, store, defer the apply job): "
          f"{ack_rate:.0f}/s; p50 {statistics.median(ack_latencies):.2f} ms, p95 {p95(ack_latencies):.2f} ms "
          f"(target p95 < 20 ms, >= 500/s)")
    print(f"duplicate deliveries (verify, refused by the unique event id, nothing deferred): {duplicates:.0f}/s")
    print(f"applied by 1 worker, concurrency {concurrency} (payment succeeded, invoice paid, subscription "
          f"active): {applied:.0f} events/s ({count} events; worker wall time with start-up {wall:.1f} s)")
    print(f"reference, GET /healthz in the same run: {ref_rate:.0f}/s; p50 {statistics.median(ref_latencies):.2f} "
          f"ms, p95 {p95(ref_latencies):.2f} ms")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} cores".format(*os.getloadavg(), os.cpu_count()))


def main(args) -> None:
    logging.disable(logging.WARNING)  # one line per duplicate or warm-up rejection would drown the figures
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from payments.models import Payment, PaymentStatus, ProviderEvent
        from payments.tests.stripe_support import WEBHOOK_SECRET, deliver

        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        events = stored_events(args.count)
        client = Client()
        for _ in range(20):  # warm up both paths (imports, the modules state read) before timing either
            client.get("/healthz")
            deliver(client, b"{}", apply=False)
        reference = timed([lambda: client.get("/healthz")] * args.count)
        acks = timed([lambda event=event: deliver(client, event, apply=False) for event in events])
        duplicates, _ = timed([lambda event=event: deliver(client, event, apply=False) for event in events])
        assert ProviderEvent.objects.filter(status="pending").count() == args.count
        assert not Payment.objects.filter(status=PaymentStatus.SUCCEEDED).exists()  # nothing applied yet

        applied, wall = worker_apply(database=name, concurrency=args.concurrency)
        assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == args.count
        assert ProviderEvent.objects.filter(status="processed", attempts=1).count() == args.count
        report(count=args.count, reference=reference, acks=acks, duplicates=duplicates, applied=applied,
               wall=wall, concurrency=args.concurrency)
    finally:
        connection.close()
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main(parse_args())
