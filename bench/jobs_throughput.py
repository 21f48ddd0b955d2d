"""Benchmark: 10,000 invoices finalized, each emailed by a job the finalizing transaction enqueued.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/jobs_throughput.py

The script (re)creates its own database (default billing_bench_jobs) on the server of DATABASE_URL and
migrates it, seeds customers with one draft invoice each, and measures in one run:
- the raw enqueue rate of the engine (Procrastinate): no-op jobs deferred one per transaction, then in
  batches of 1,000, through the same Django connection the app defers with;
- a backlog: `--backlog` invoices finalized while no worker runs, then `--workers` worker processes
  (`manage.py procrastinate worker`, `--concurrency` jobs each, Django's in-memory email backend so the
  SMTP hop is not what is measured) started, and the time until all those emails are sent: the
  workers' jobs/s;
- live: with the workers running, `--invoices` invoices finalized through `invoice_finalize`, each in a
  transaction of its own (which enqueues its email job), and the wait until every email is logged sent:
  the delay from each invoice's commit to its email's `sent_at`, p50 and p99 (and jobs/s, bounded here by
  how fast one process finalizes).
It checks every invoice got exactly one email, and prints the load average (the machine may be shared)."""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RAW_QUEUE = "bench-raw"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--backlog", type=int, default=5_000, help="invoices finalized before the workers start")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker process")
    parser.add_argument("--raw-jobs", type=int, default=5_000, help="no-op jobs per raw enqueue measurement")
    parser.add_argument("--database", default="billing_bench_jobs")
    return parser.parse_args()


def recreate_database(server_url: str, name: str) -> str:
    import psycopg

    parts = urlsplit(server_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def django_start(args) -> None:
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    os.environ["DATABASE_URL"] = recreate_database(server, args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"  # as in production: DEBUG keeps every statement in memory
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(n: int) -> list[int]:
    """n customers, each with one draft invoice of one line; returns the invoice ids."""
    from decimal import Decimal

    from payments.models import Invoice, InvoiceLine, InvoiceLineKind
    from subscriptions.models import Customer

    customers = Customer.objects.bulk_create(
        [Customer(name=f"Customer {i}", email=f"c{i}@example.com", currency="USD") for i in range(n)], batch_size=2000)
    invoices = Invoice.objects.bulk_create([Invoice(customer=c, currency="USD") for c in customers], batch_size=2000)
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=inv, kind=InvoiceLineKind.ADJUSTMENT, description="Monthly service", quantity=Decimal(1),
                    unit_amount=Decimal(1999), amount=1999) for inv in invoices], batch_size=2000)
    return [inv.pk for inv in invoices]


def raw_enqueue_rates(n: int) -> dict[str, float]:
    """Jobs/s the engine enqueues by itself: one job per transaction, and 1,000 per statement."""
    from django.db import connection, transaction
    from procrastinate.contrib.django import app

    deferrer = app.configure_task(name="bench.noop", allow_unknown=True, queue=RAW_QUEUE)
    started = time.perf_counter()
    for i in range(n):
        with transaction.atomic():
            deferrer.defer(i=i)
    single = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for first in range(0, n, 1000):
        with transaction.atomic():
            deferrer.batch_defer(*({"i": i} for i in range(first, min(first + 1000, n))))
    batched = n / (time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = %s", [RAW_QUEUE])
    return {"single": single, "batched": batched}


def workers_start(args) -> list[subprocess.Popen]:
    from django.db import connection

    command = [sys.executable, "manage.py", "procrastinate", "worker", "--queues=default",
               "--concurrency", str(args.concurrency)]
    processes = [subprocess.Popen([*command, f"--name=bench-{n}"], cwd=ROOT, env=os.environ.copy(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for n in range(args.workers)]
    deadline = time.monotonic() + 60
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM procrastinate_workers")
            if cursor.fetchone()[0] >= args.workers:
                return processes
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise SystemExit("the workers did not start: " + "".join(p.stderr.read().decode() for p in processes
                                                                     if p.poll() is not None))
        time.sleep(0.2)


def finalize_all(invoice_ids: list[int]) -> tuple[dict[int, float], float]:
    """Each invoice finalized in its own transaction; returns when each committed (epoch seconds)."""
    from django.db import transaction

    from core.audit import Actor
    from payments.models import Invoice
    from payments.services import invoice_finalize

    actor = Actor.system("bench")
    committed: dict[int, float] = {}
    started = time.perf_counter()
    for pk in invoice_ids:
        with transaction.atomic():
            invoice_finalize(invoice=Invoice(pk=pk), actor=actor)
        committed[pk] = time.time()
    return committed, len(invoice_ids) / (time.perf_counter() - started)


def backlog_drain_rate(invoice_ids: list[int]) -> float:
    """Emails sent per second from the first to the last of the backlog's (workers' start left out)."""
    from django.db.models import Max, Min

    from notifications.models import EmailLog

    span = EmailLog.objects.filter(event_key__in=[f"invoice_finalized:{pk}" for pk in invoice_ids]).aggregate(
        first=Min("sent_at"), last=Max("sent_at"))
    return len(invoice_ids) / (span["last"] - span["first"]).total_seconds()


def wait_until_sent(n: int, timeout: float = 1800) -> None:
    from notifications.models import EmailLog, EmailStatus

    deadline = time.monotonic() + timeout
    while EmailLog.objects.filter(status=EmailStatus.SENT).count() < n:
        if time.monotonic() > deadline:
            raise SystemExit("not every email was sent in time")
        time.sleep(0.2)


def delays(committed: dict[int, float]) -> tuple[list[float], float, float]:
    """Commit-to-sent delay of every invoice's email (ms, sorted), first commit and last send (epoch)."""
    from notifications.models import EmailLog

    logs = EmailLog.objects.filter(kind="invoice_finalized").values_list("event_key", "sent_at")
    sent = {int(key.split(":")[1]): at.timestamp() for key, at in logs}
    assert len(sent) == logs.count(), "one email per invoice"
    sent = {pk: sent[pk] for pk in committed}
    ms = sorted((sent[pk] - committed[pk]) * 1000 for pk in committed)
    return ms, min(committed.values()), max(sent.values())


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))]


def main() -> None:
    args = parse_args()
    django_start(args)
    invoice_ids = seed(args.backlog + args.invoices)
    backlog_ids, live_ids = invoice_ids[:args.backlog], invoice_ids[args.backlog:]
    load_before = os.getloadavg()
    raw = raw_enqueue_rates(args.raw_jobs)
    finalize_all(backlog_ids)
    workers = workers_start(args)
    try:
        wait_until_sent(args.backlog)
        drain_rate = backlog_drain_rate(backlog_ids)
        committed, finalize_rate = finalize_all(live_ids)
        wait_until_sent(args.backlog + args.invoices)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    ms, first_commit, last_sent = delays(committed)
    load_after = os.getloadavg()
    print(f"backlog: {args.backlog:,} emails queued, then {args.workers} workers x {args.concurrency} started: "
          f"{drain_rate:,.0f} jobs/s from the first email sent to the last")
    print(f"live: {args.invoices:,} invoices finalized ({finalize_rate:,.0f}/s, one transaction each, email job "
          f"enqueued in it), {args.workers} workers x {args.concurrency}")
    print(f"emails sent: {len(ms):,}, each once; {len(ms) / (last_sent - first_commit):,.0f} jobs/s from the first "
          f"commit to the last email")
    print(f"commit to sent: p50 {statistics.median(ms):,.0f} ms, p99 {percentile(ms, 99):,.0f} ms, "
          f"max {ms[-1]:,.0f} ms")
    print(f"reference, same run: Procrastinate raw enqueue {raw['single']:,.0f} jobs/s one per transaction, "
          f"{raw['batched']:,.0f} jobs/s in batches of 1,000")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *load_after))


if __name__ == "__main__":
    main()
