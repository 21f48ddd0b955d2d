"""Credit debits by concurrent clients, through the service and over HTTP, beside a raw locked update.

    .venv/bin/python bench/credit_debits.py [--seconds 5] [--rounds 3] [--clients 8] [--port 8111]
                                           [--database NAME] [--redis URL] [--workers N] [--threads N]
                                           [--worker-class CLASS]

It recreates its own database (billing_bench_credits by default), migrates it and gives every customer
it uses a large grant. Each measurement runs `--clients` clients at once for `--seconds`, first each on a
customer of its own ("distinct"), then all on one customer ("hot"), the three ways of a scenario back to back,
and all of it `--rounds` times (figures are totals over the rounds; each round's ratio is printed too):
- raw: client processes doing BEGIN; SELECT ... FOR UPDATE on the balance row; UPDATE it; INSERT a
  ledger row; COMMIT with psycopg, nothing else (the reference, same server, same run);
- service: client processes calling `credits.services.credit_debit` (one credit, a fresh idempotency key);
- HTTP: client processes (so the load generator is not one interpreter's GIL) posting to
  `/api/v1/credits/debit/` with a token each, on keep-alive connections opened (with one untimed read of
  the caller's ledger) before the clock, speaking HTTP/1.1 on a plain socket as wrk does
  (`KeepAliveClient`), to gunicorn started with the Procfile's own `web` command (worker class,
  WEB_CONCURRENCY workers, WEB_THREADS threads, access log), so the figure is the shipped configuration's;
  `--workers`, `--threads` and `--worker-class` override it to compare others.
Then it checks that every debit answered is stored once and that the ledger equals the balances
(`billing verify`'s credit checks), and prints debits/s with each figure's share of the reference, and the
CPU the client processes spent per debit (they share the machine's cores with the server and PostgreSQL).
"""

import argparse
import json
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from support import (  # noqa: E402
    PG,
    load_average,
    procfile_web_command,
    recreate_database,
    server_env,
    start_command,
)

GRANT = 10**12
# Seconds the client processes may take to start (Django set-up on a busy machine) before the run gives
# up: a client that failed to start breaks the others' barrier instead of leaving them waiting.
START_TIMEOUT = 180
SCENARIOS = ("distinct", "hot")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measurement runs")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times every measurement is repeated, the ways of a scenario back to back each time")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--port", type=int, default=8111)
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: the Procfile's WEB_CONCURRENCY)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: the Procfile's WEB_THREADS)")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), help="default: the Procfile's")
    parser.add_argument("--database", default="billing_bench_credits")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2", help="cache for rate limits ('' for none)")
    return parser.parse_args()


def setup_fixtures(clients: int) -> dict:
    """For each way (raw, service, http) and scenario, the customers its clients debit: one per client
    (distinct) or one for all (hot); each with a grant so large it never runs out. HTTP customers get a
    user with a token, on an unlimited plan with api_access."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from core.audit import Actor
    from credits.models import CreditSource
    from credits.services import credit_grant
    from payments.services import subscription_start
    from subscriptions.models import Plan
    from subscriptions.services import customer_create

    actor = Actor.system("bench")
    plan = Plan.objects.create(code="bench-unlimited", name="Bench unlimited", amount=0, features=["api_access"],
                               rate_limit_per_minute=0, rate_limit_per_hour=0, api_calls_per_day=0)
    fixtures: dict = {}
    for way in ("raw", "service", "http"):
        for scenario in SCENARIOS:
            customers, tokens = [], []
            for i in range(clients if scenario == "distinct" else 1):
                name = f"{way}-{scenario}-{i}"
                user = get_user_model().objects.create_user(name) if way == "http" else None
                customer = customer_create(name=name, email=f"{name}@example.com", user=user)
                credit_grant(customer=customer, amount=GRANT, source=CreditSource.PURCHASE, actor=actor)
                if user is not None:
                    subscription_start(customer=customer, plan=plan, actor=actor)
                    tokens.append(Token.objects.create(user=user).key)
                customers.append(customer.pk)
            fixtures[(way, scenario)] = {"customers": customers, "tokens": tokens}
    return fixtures


# ---------------------------------------------------------------------------------- client processes

def raw_client(database_url: str, customer_id: int, seconds: float, ready, results) -> None:
    """The reference: the least a locked debit can cost, on the same tables."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        ready.wait(timeout=START_TIMEOUT)
        done, deadline = 0, time.monotonic() + seconds
        started, cpu_started = time.monotonic(), time.process_time()
        while time.monotonic() < deadline:
            with conn.cursor() as cursor:
                cursor.execute("SELECT balance FROM credits_creditbalance WHERE customer_id = %s FOR UPDATE",
                               [customer_id])
                balance = cursor.fetchone()[0] - 1
                cursor.execute("UPDATE credits_creditbalance SET balance = %s, updated_at = now() "
                               "WHERE customer_id = %s", [balance, customer_id])
                cursor.execute("INSERT INTO credits_creditledgerentry (created_at, actor_label, reason, customer_id, "
                               "kind, amount, balance_after) VALUES (now(), 'bench', 'raw', %s, 'debit', -1, %s)",
                               [customer_id, balance])
            conn.commit()
            done += 1
        results.put(("raw", done, time.monotonic() - started, time.process_time() - cpu_started))


def service_client(customer_id: int, seconds: float, prefix: str, ready, results) -> None:
    import django

    django.setup()
    from core.audit import Actor
    from credits.services import credit_debit
    from subscriptions.models import Customer

    # Read once before the start, so the connection is open when the clock starts.
    customer, actor = Customer.objects.get(pk=customer_id), Actor.system("bench")
    ready.wait(timeout=START_TIMEOUT)
    done, deadline = 0, time.monotonic() + seconds
    started, cpu_started = time.monotonic(), time.process_time()
    while time.monotonic() < deadline:
        credit_debit(customer=customer, amount=1, actor=actor, idempotency_key=f"{prefix}-{done}")
        done += 1
    results.put(("service", done, time.monotonic() - started, time.process_time() - cpu_started))


def run_processes(targets: list[tuple], seconds: float) -> tuple[int, float, float]:
    """Start one process per (function, args); all start debiting together; (debits, seconds, the client
    processes' CPU seconds while debiting)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(targets))
    results = context.Queue()
    processes = [context.Process(target=function, args=(*args, seconds, *extra, ready, results))
                 for function, args, extra in targets]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=START_TIMEOUT + seconds + 60) for _ in processes]
    except queue.Empty:
        outcomes = []
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
    if len(outcomes) < len(processes) or any(process.exitcode for process in processes):
        raise SystemExit("a client process failed (its traceback is above)")
    return sum(o[1] for o in outcomes), max(o[2] for o in outcomes), sum(o[3] for o in outcomes)


# ---------------------------------------------------------------------------------- HTTP clients

class KeepAliveClient:
    """HTTP/1.1 on one keep-alive socket, as a load generator such as wrk speaks it: a request's bytes are
    written whole, and a response is read as its status line, its headers up to the blank line, and
    Content-Length bytes of body. http.client parsed every response's headers with the email package, about
    0.4 ms of CPU per debit on the cores the server runs on; this costs a tenth of that and checks the same
    things (the status, the whole body, `Connection: close`)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.socket: socket.socket | None = None
        self.pending = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.socket is None:
            self.socket = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pending = b""
        self.socket.sendall(request)
        head = self._read_until(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        headers = dict(line.split(b":", 1) for line in header_block.split(b"\r\n") if line)
        fields = {name.strip().lower(): value.strip() for name, value in headers.items()}
        if b"transfer-encoding" in fields:  # the API sets Content-Length on every answer
            raise ConnectionError(f"unexpected Transfer-Encoding: {fields[b'transfer-encoding']!r}")
        body = self._read_exactly(int(fields.get(b"content-length", b"0")))
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        return int(status_line.split(b" ", 2)[1]), body

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def _read_until(self, marker: bytes) -> bytes:
        while (end := self.pending.find(marker)) < 0:
            self._receive()
        head, self.pending = self.pending[:end], self.pending[end + len(marker):]
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.pending) < size:
            self._receive()
        body, self.pending = self.pending[:size], self.pending[size:]
        return body

    def _receive(self) -> None:
        chunk = self.socket.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-response")
        self.pending += chunk


def http_request(*, method: str, path: str, token: str, body: bytes = b"") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def http_client(port: int, token: str, seconds: float, prefix: str, ready, results) -> None:
    """One client: keep-alive posts of one-credit debits, each with a fresh idempotency key."""
    client = KeepAliveClient(port)
    # Untimed, as the raw and service clients connect before the clock: the keep-alive connection is open
    # and the server has served a request before the first timed debit.
    status, _ = client.exchange(http_request(method="GET", path="/api/v1/credits/ledger/?limit=1", token=token))
    if status != 200:
        raise SystemExit(f"warm-up request answered {status}")
    created = errors = 0
    ready.wait(timeout=START_TIMEOUT)
    deadline = time.monotonic() + seconds
    started, cpu_started = time.monotonic(), time.process_time()
    while time.monotonic() < deadline:
        body = json.dumps({"amount": 1, "reason": "bench", "idempotency_key": f"{prefix}-{created}-{errors}"})
        status, payload = client.exchange(http_request(method="POST", path="/api/v1/credits/debit/", token=token,
                                                       body=body.encode()))
        if status == 201:
            created += 1
        else:
            errors += 1
            print(f"HTTP {status}: {payload[:200]!r}", file=sys.stderr)
    client.close()
    if errors:
        raise SystemExit(f"{errors} HTTP debits failed")
    results.put(("http", created, time.monotonic() - started, time.process_time() - cpu_started))


# ---------------------------------------------------------------------------------- main

def gunicorn_command(args, env: dict) -> list[str]:
    """The Procfile's web command, with the options given on the command line in place of its own."""
    env.update({name: str(value) for name, value in (("WEB_CONCURRENCY", args.workers), ("WEB_THREADS", args.threads))
                if value is not None})
    command = procfile_web_command(port=args.port, env=env)
    if args.worker_class:
        command[command.index("--worker-class") + 1] = args.worker_class
    return command


def server_label(command: list[str]) -> str:
    def option(name: str) -> str:
        return command[command.index(name) + 1]

    return f"gunicorn {option('--workers')} {option('--worker-class')} workers x {option('--threads')} threads"


WAYS = ("raw", "service", "http")


def client_targets(*, way: str, scenario: str, round_: int, args, fixtures: dict, database_url: str) -> list[tuple]:
    """The client processes of one measurement; idempotency keys are fresh in every round."""
    clients = range(args.clients)
    if way == "raw":
        raw = fixtures[("raw", scenario)]["customers"]
        return [(raw_client, (database_url, raw[i % len(raw)]), ()) for i in clients]
    if way == "service":
        service = fixtures[("service", scenario)]["customers"]
        return [(service_client, (service[i % len(service)],), (f"{scenario}-{round_}-{i}",)) for i in clients]
    tokens = fixtures[("http", scenario)]["tokens"]
    return [(http_client, (args.port, tokens[i % len(tokens)]), (f"{scenario}-{round_}-{i}",)) for i in clients]


def measure(args, fixtures: dict, database_url: str) -> tuple[dict, list[dict]]:
    """Every way of every scenario, `--rounds` times, the ways of a scenario back to back in each round, so that
    each figure and its reference are measured seconds apart: this machine's speed drifts by up to
    2 x within minutes, and a reference measured once at the start compared figures taken at different
    speeds. gunicorn runs throughout (idle while the raw and service clients run). Returns the totals per
    (way, scenario) as (debits, debits/s, client CPU seconds), and each round's rates."""
    totals: dict[tuple[str, str], list[float]] = {}
    rounds: list[dict] = []
    env = server_env(database=args.database, redis=args.redis)
    server = start_command(gunicorn_command(args, env), port=args.port, env=env)
    try:
        for round_ in range(args.rounds):
            rates = {}
            for scenario in SCENARIOS:
                for way in WAYS:
                    targets = client_targets(way=way, scenario=scenario, round_=round_, args=args, fixtures=fixtures,
                                             database_url=database_url)
                    done, elapsed, cpu = run_processes(targets, args.seconds)
                    rates[(way, scenario)] = done / elapsed
                    before = totals.get((way, scenario), (0, 0.0, 0.0))
                    totals[(way, scenario)] = [a + b for a, b in zip(before, (done, elapsed, cpu), strict=True)]
            rounds.append(rates)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return {key: (done, done / seconds, cpu) for key, (done, seconds, cpu) in totals.items()}, rounds


def check_stored(fixtures: dict, rates: dict) -> bool:
    """Every debit answered is one ledger row; the ledger equals every balance and grant."""
    from credits.models import CreditLedgerEntry, LedgerKind
    from credits.selectors import credit_balance_mismatches

    ok = True
    for (way, scenario), (done, *_) in rates.items():
        stored = CreditLedgerEntry.objects.filter(customer_id__in=fixtures[(way, scenario)]["customers"],
                                                  kind=LedgerKind.DEBIT).count()
        ok = ok and stored == done
    return ok and credit_balance_mismatches() == []


def main():
    args = parse_args()
    env = server_env(database=args.database, redis=args.redis)
    recreate_database(args.database)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    cache.clear()
    fixtures = setup_fixtures(args.clients)
    connection.close()

    load_before = load_average()
    rates, rounds = measure(args, fixtures, f"{PG}/{args.database}")
    stored = check_stored(fixtures, rates)
    workers = server_label(gunicorn_command(args, server_env(database=args.database, redis=args.redis)))
    print(f"{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s per measurement, {workers}, "
          f"{os.cpu_count()} CPUs; load average before {load_before}, after {load_average()}")
    print(f"{'':<20}{'raw lock+update+insert':>24}{'service':>22}{'HTTP':>22}")
    for scenario in SCENARIOS:
        reference = rates[("raw", scenario)][1]
        cells = [f"{reference:,.0f}/s"] + [
            f"{rates[(way, scenario)][1]:,.0f}/s ({rates[(way, scenario)][1] / reference:.2f} x)"
            for way in ("service", "http")]
        label = "distinct customers" if scenario == "distinct" else "one hot customer"
        print(f"{label:<20}{cells[0]:>24}{cells[1]:>22}{cells[2]:>22}")
    for scenario in SCENARIOS:
        print(f"each round's share of its own reference, {scenario}: " + "; ".join(
            f"{way} " + " ".join(f"{r[(way, scenario)] / r[('raw', scenario)]:.2f}" for r in rounds)
            for way in ("service", "http")))
    print("client processes' CPU per debit: " + ", ".join(
        f"{way} {scenario} {rates[(way, scenario)][2] / max(rates[(way, scenario)][0], 1) * 1000:.2f} ms"
        for scenario in SCENARIOS for way in ("raw", "service", "http")))
    print(f"stored once, ledger = balance: {stored}")
    if not stored:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
