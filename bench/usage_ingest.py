"""Usage ingestion over HTTP, end to end, beside raw PostgreSQL COPY of the same rows.

    .venv/bin/python bench/usage_ingest.py [--seconds 20] [--workers 3] [--clients 4] [--port 8110]

It recreates its own database (billing_bench_api by default), migrates it, creates a customer on an
unlimited plan with an API token, starts gunicorn on loopback, and fires batches of 1,000 events
from client threads for a bounded time and number of batches. A second run does the same for another
customer on a meter that debits a credit per event (every batch takes its credits in its own
transaction, the concurrent batches of that one customer queueing on its balance row). Then it COPYs
the same number of rows (same meters, keys, quantities, times and properties, for a third customer)
into the same table, prints the rates, checks that every accepted event is stored exactly once and
paid for exactly once (ledger = balance), and stops the server.

Why gunicorn sync workers: a 1,000-event request is CPU work (parse, validate, build the INSERT,
render 1,000 outcomes), so on 2 cores the fastest setup is a few single-threaded processes with no
event loop or thread hop in between (daphne runs sync views in one thread per process).
"""

import argparse
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from support import PG, load_average, recreate_database, server_env, start_server  # noqa: E402

# Enough credits for every event the credit run can send (--max-batches x --batch).
CREDIT_GRANT = 10**10


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the clients send (bounded)")
    parser.add_argument("--max-batches", type=int, default=2000, help="stop after this many batches")
    parser.add_argument("--batch", type=int, default=1000, help="events per request (max 1000)")
    parser.add_argument("--server", choices=["gunicorn", "daphne"], default="gunicorn")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--database", default="billing_bench_api")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2", help="cache for rate limits ('' for none)")
    parser.add_argument("--dimensions", action="store_true",
                        help="every event also carries the eight typed AI-usage dimensions (tokens, cost, ...)")
    return parser.parse_args()


def setup_fixtures() -> dict:
    """Two customers on an unlimited plan with api_access and a token each, the second with credits; the
    meter of the first (no credit price) and of the second (a credit per event); a third customer for COPY."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from core.audit import Actor
    from credits.models import CreditSource
    from credits.services import credit_grant
    from payments.services import subscription_start
    from subscriptions.models import Plan
    from subscriptions.services import customer_create
    from usage.models import Meter

    actor = Actor.system("bench")
    plan = Plan.objects.create(code="bench-unlimited", name="Bench unlimited", amount=0, features=["api_access"],
                               rate_limit_per_minute=0, rate_limit_per_hour=0, api_calls_per_day=0)
    fixtures = {}
    for run, meter_code, credits_per_unit in (("plain", "api-calls", None), ("credits", "ai-credits", 1)):
        user = get_user_model().objects.create_user(f"bench-{run}", password=secrets.token_hex(8))
        customer = customer_create(name=f"Bench {run}", email=f"{run}@example.com", user=user)
        subscription_start(customer=customer, plan=plan, actor=actor)
        if credits_per_unit:
            credit_grant(customer=customer, amount=CREDIT_GRANT, source=CreditSource.PURCHASE, actor=actor)
        meter = Meter.objects.create(code=meter_code, name=meter_code, credits_per_unit=credits_per_unit)
        fixtures[run] = {"token": Token.objects.create(user=user).key, "customer": customer.pk, "meter": meter.pk,
                         "meter_code": meter_code}
    fixtures["copy_customer"] = customer_create(name="Bench COPY", email="copy@example.com").pk
    return fixtures


# Events are dated a minute before the run starts (the API refuses events dated in the future).
OCCURRED_AT = datetime.fromtimestamp(time.time() - 60, UTC).isoformat()


# The typed dimensions an AI-billing client reports with each call (--dimensions).
AI_DIMENSIONS = {"tokens_used": 150, "response_time_ms": 2500, "cost": "0.1", "request_id": "req-{index}",
                 "batch_id": "job-42", "endpoint": "/v1/chat", "language_code": "en", "category": "electronics"}


def event(batch: int, index: int, meter: str = "api-calls", *, dimensions: bool = False) -> dict:
    base = {"meter": meter, "idempotency_key": f"b{batch}-e{index}", "quantity": str(index % 7 + 1),
            "occurred_at": OCCURRED_AT, "properties": {"region": "eu", "n": index % 13}}
    if dimensions:
        base.update({k: v.format(index=index) if isinstance(v, str) else v for k, v in AI_DIMENSIONS.items()})
    return base


def run_clients(args, token: str, meter: str) -> tuple[int, int, float]:
    """Fire batches from `args.clients` threads until the time or batch budget is spent."""
    lock = threading.Lock()
    state = {"next": 0, "created": 0, "requests": 0, "errors": 0}
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    deadline = time.monotonic() + args.seconds

    def take_batch() -> int | None:
        with lock:
            if state["next"] >= args.max_batches or time.monotonic() >= deadline:
                return None
            state["next"] += 1
            return state["next"]

    # The body is encoded once; each batch only swaps in its number, so the clients (which share the
    # 2 cores with the server and PostgreSQL) spend as little CPU as a real remote client would here.
    events = [event(0, i, meter, dimensions=args.dimensions) for i in range(args.batch)]
    template = json.dumps({"events": events}).replace('"b0-e', '"b{batch}-e')
    assert template.count("{batch}") == args.batch

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        while (number := take_batch()) is not None:
            body = template.replace("{batch}", str(number)).encode()
            conn.request("POST", "/api/v1/usage/events/", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            with lock:
                state["requests"] += 1
                if response.status == 201:
                    state["created"] += json.loads(payload)["created"]
                else:
                    state["errors"] += 1
                    print(f"HTTP {response.status}: {payload[:200]!r}", file=sys.stderr)
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if state["errors"]:
        print(f"{state['errors']} requests failed", file=sys.stderr)
    return state["created"], state["requests"], elapsed


def copy_reference(database: str, customer_id: int, meter_id: int, batches: int, batch: int) -> tuple[int, float]:
    """COPY the same rows (for the second customer) into the same table; time the COPY only."""
    import psycopg

    now = datetime.now(UTC).isoformat()
    lines = []
    for number in range(1, batches + 1):
        for index in range(batch):
            e = event(number, index)
            lines.append(f"{customer_id}\t{meter_id}\t{e['quantity']}\t{e['occurred_at']}\t{e['idempotency_key']}\t"
                         f"{json.dumps(e['properties'])}\t{now}\n")
    data = "".join(lines).encode()
    with psycopg.connect(f"{PG}/{database}") as conn:
        started = time.monotonic()
        with conn.cursor() as cursor, cursor.copy(
                "COPY usage_usageevent (customer_id, meter_id, quantity, occurred_at, idempotency_key, properties, "
                "received_at) FROM STDIN") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start:start + (1 << 20)])
        conn.commit()
        elapsed = time.monotonic() - started
    return len(lines), elapsed


def stored_check(customer_id: int, created: int) -> tuple[bool, str]:
    """Every accepted event stored once and paid for once (the credits its meter prices it at; none for
    the plain run), and the ledger equal to the balances."""
    from django.db import connection

    from credits.models import CreditLedgerEntry, LedgerKind
    from credits.selectors import credit_balance_mismatches

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT e.idempotency_key), "
                       "coalesce(sum(ceil(e.quantity * coalesce(m.credits_per_unit, 0))), 0) "
                       "FROM usage_usageevent e JOIN usage_meter m ON m.id = e.meter_id WHERE e.customer_id = %s",
                       [customer_id])
        stored, distinct, priced = cursor.fetchone()
    debited = -sum(CreditLedgerEntry.objects.filter(customer_id=customer_id, kind=LedgerKind.DEBIT)
                   .values_list("amount", flat=True))
    ok = stored == distinct == created and debited == priced and credit_balance_mismatches() == []
    return ok, f"{stored:,} rows, {distinct:,} distinct keys, {debited:,} credits debited"


def main():
    args = parse_args()
    env = server_env(database=args.database, redis=args.redis)
    recreate_database(args.database)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection

    cache.clear()
    fixtures = setup_fixtures()
    connection.close()

    load_before = load_average()
    server = start_server(server=args.server, workers=args.workers, port=args.port, env=env)
    runs = {}
    try:
        for run in ("plain", "credits"):
            runs[run] = run_clients(args, fixtures[run]["token"], fixtures[run]["meter_code"])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    checks = {run: stored_check(fixtures[run]["customer"], runs[run][0]) for run in runs}
    connection.close()
    batches = max(requests for _, requests, _ in runs.values())
    copied, copy_elapsed = copy_reference(args.database, fixtures["copy_customer"], fixtures["plain"]["meter"],
                                          batches, args.batch)

    copy_rate = copied / copy_elapsed if copy_elapsed else 0
    server_name = f"gunicorn, {args.workers} sync workers" if args.server == "gunicorn" else "daphne (ASGI)"
    print(f"server: {server_name}; clients: {args.clients} threads; batches of {args.batch}; "
          f"{os.cpu_count()} CPUs; load average before the run: {load_before}, after: {load_average()}")
    for run, label in (("plain", "HTTP ingestion "), ("credits", "... with credits")):
        created, requests, elapsed = runs[run]
        rate = created / elapsed if elapsed else 0
        share = f" ({rate / copy_rate:.2f} x COPY)" if copy_rate else ""
        print(f"{label}: {created:>9,} events in {requests} requests, {elapsed:6.2f} s -> {rate:>10,.0f} events/s"
              f"{share}")
    print(f"PostgreSQL COPY: {copied:>9,} rows,                  {copy_elapsed:6.2f} s "
          f"-> {copy_rate:>10,.0f} rows/s")
    for run, (ok, detail) in checks.items():
        print(f"stored once ({run}): {ok} ({detail})")
    if not all(ok for ok, _ in checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
