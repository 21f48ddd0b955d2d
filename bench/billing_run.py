"""Benchmark: `billing run` over 100,000 subscriptions due for renewal, a third of them with usage.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/billing_run.py

The script (re)creates its own database (default billing_bench_engine) on the server of DATABASE_URL,
migrates it, seeds with COPY, times the run service in-process, checks that every subscription was
renewed, invoiced and refilled exactly once, runs again to show nothing is billed twice, and prints the
rows written per second next to raw PostgreSQL COPY and multi-row INSERT speed measured in the same run (the
COPY twice before the run and twice after it, the median of the four taken, as the machine's speed drifts)."""

import argparse
import io
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AS_OF = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
START = datetime(2026, 1, 28, 12, 0, tzinfo=UTC)
# Reference COPYs before the run, and as many after it (main).
REFERENCE_SAMPLES = 2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--database", default="billing_bench_engine")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1,
                        help="billing run processes started at once (1: the run service in this process)")
    return parser.parse_args()


def recreate_database(server_url: str, name: str) -> str:
    import psycopg

    parts = urlsplit(server_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def copy_rows(cursor, table: str, columns: list[str], rows) -> int:
    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row))
        buffer.write("\n")
        count += 1
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())
    return count


def seed(n: int) -> dict:
    from django.db import connection

    from subscriptions.models import Plan
    from usage.models import Meter, MeterPrice

    plan = Plan.objects.create(code="bench-pro", name="Bench Pro", amount=2000, currency="USD", credits_per_period=1000)
    meter = Meter.objects.create(code="api-calls", name="API calls", unit="call")
    MeterPrice.objects.create(plan=plan, meter=meter, unit_amount="0.4", included_units=100)
    now = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the psycopg cursor, for COPY
        copy_rows(cursor, "subscriptions_customer",
                  ["name", "email", "currency", "metadata", "created_at", "updated_at"],
                  ((f"Customer {i}", f"c{i}@example.com", "USD", "{}", now, now) for i in range(n)))
        cursor.execute("SELECT min(id) FROM subscriptions_customer")
        first = cursor.fetchone()[0]
        copy_rows(cursor, "subscriptions_subscription",
                  ["customer_id", "plan_id", "status", "billing_cycle_anchor", "current_period_start",
                   "current_period_end", "cancel_at_period_end", "metadata", "created_at", "updated_at"],
                  ((first + i, plan.pk, "active", START.isoformat(), START.isoformat(), AS_OF.isoformat(), "f", "{}",
                    now, now) for i in range(n)))
        events = copy_rows(cursor, "usage_usageevent",
                           ["customer_id", "meter_id", "quantity", "occurred_at", "idempotency_key", "properties",
                            "received_at"],
                           ((first + i, meter.pk, 40 + (i % 7) * 13 + k, (START + timedelta(days=k + 1)).isoformat(),
                             f"e{i}-{k}", "{}", now) for i in range(0, n, 3) for k in range(3)))
        cursor.execute("ANALYZE")
    return {"seconds": time.perf_counter() - started, "events": events}


TABLES = ["payments_invoice", "payments_invoiceline", "payments_invoicestatuschange", "subscriptions_subscriptionevent",
          "credits_creditgrant", "credits_creditledgerentry", "credits_creditallocation", "credits_creditbalance"]


def table_counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        return counts


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def backend_cpu_seconds(pid: int | None = None) -> float | None:
    """CPU time used so far by this connection's PostgreSQL backend (same machine, from /proc)."""
    try:
        fields = Path(f"/proc/{pid or backend_pid()}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reference_rows(n: int) -> tuple[list[str], list[tuple]]:
    now = datetime.now(UTC).isoformat()
    columns = ["number", "customer_id", "billing_reason", "status", "currency", "subtotal", "total", "amount_paid",
               "amount_due", "attempt_count", "metadata", "created_at", "updated_at"]
    return columns, [(f"REF-{i}", 1, "subscription_cycle", "open", "USD", 2000, 2000, 0, 2000, 0, "{}", now, now)
                     for i in range(n)]


@contextmanager
def _reference_table(name: str):
    """A temporary copy of the invoice table (its defaults and indexes, no foreign keys), dropped by the
    rollback that ends the block."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute(f"CREATE TEMP TABLE {name} (LIKE payments_invoice INCLUDING DEFAULTS INCLUDING INDEXES)")
        cursor.execute(f"CREATE TEMP SEQUENCE {name}_seq")
        cursor.execute(f"ALTER TABLE {name} ALTER COLUMN id SET DEFAULT nextval('{name}_seq')")
        yield cursor
        transaction.set_rollback(True)


def reference_copy(n: int) -> tuple[float, float]:
    """Raw PostgreSQL COPY of `n` invoice-shaped rows into a copy of the invoice table: (rows/s, rows per CPU
    second of this process and its backend, like the run's "on CPU alone")."""
    columns, rows = _reference_rows(n)
    with _reference_table("ref_copy") as cursor:
        pid = backend_pid()
        started, cpu = time.perf_counter(), time.process_time() + (backend_cpu_seconds(pid) or 0.0)
        copy_rows(cursor, "ref_copy", columns, rows)
        return (n / (time.perf_counter() - started),
                n / max(time.process_time() + (backend_cpu_seconds(pid) or 0.0) - cpu, 1e-6))


def reference_insert(n: int) -> float:
    """Raw PostgreSQL 1,000-row INSERTs of the same rows: rows/s."""
    columns, rows = _reference_rows(n)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with _reference_table("ref_insert") as cursor:
        started = time.perf_counter()
        for i in range(0, n, 1000):
            chunk = rows[i:i + 1000]
            cursor.execute(f"INSERT INTO ref_insert ({', '.join(columns)}) VALUES "
                           + ", ".join([placeholders] * len(chunk)), [v for row in chunk for v in row])
        return n / (time.perf_counter() - started)


def run_workers(args) -> tuple[list[str], "BackendSamples"]:
    """`manage.py billing run` in several processes at once, as cron on several hosts would start it:
    they share the batches through SKIP LOCKED. Their start-up time is part of the figure. Their
    PostgreSQL backends are sampled meanwhile (BackendSamples)."""
    command = [sys.executable, "manage.py", "billing", "run", "--as-of", AS_OF.isoformat(), "--no-progress"]
    if args.batch_size:
        command += ["--batch-size", str(args.batch_size)]
    processes = [subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, text=True)
                 for _ in range(args.workers)]
    samples = BackendSamples(exclude_pid=backend_pid())
    sampler = threading.Thread(target=samples.collect, args=(lambda: all(p.poll() is not None for p in processes),))
    sampler.start()
    lines = [process.communicate()[0].strip() for process in processes]
    sampler.join()
    if any(process.returncode for process in processes):
        raise SystemExit(f"a worker failed: {lines}")
    return lines, samples


@dataclass
class BackendSamples:
    """What the workers' PostgreSQL backends were doing, sampled every 20 ms from pg_stat_activity, and
    their CPU seconds (from /proc, last reading before each backend ended). The share of samples waiting
    for the invoice number counter is the serialized part of concurrent runs."""

    # The benchmark's own connection, idle while the workers run.
    exclude_pid: int
    states: dict[str, int] = dataclass_field(default_factory=dict)
    cpu: dict[int, float] = dataclass_field(default_factory=dict)

    def collect(self, done) -> None:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            while not done():
                rows = conn.execute(
                    "SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s) "
                    "AND backend_type = 'client backend'", [self.exclude_pid]).fetchall()
                for pid, state, wait_type, wait_event, query in rows:
                    self._note(state=state, wait_type=wait_type, wait_event=wait_event, query=query or "")
                    cpu = backend_cpu_seconds(pid)
                    if cpu is not None:
                        self.cpu[pid] = cpu
                time.sleep(0.02)

    def _note(self, *, state: str, wait_type: str | None, wait_event: str | None, query: str) -> None:
        if state != "active":
            kind = "the run process (idle in transaction)" if state == "idle in transaction" else "idle"
        elif wait_type == "Lock":
            kind = ("waiting for the invoice number counter" if "invoicenumbersequence" in query
                    else f"waiting for a lock ({wait_event})")
        elif wait_type in (None, "CPU"):
            kind = "running"
        else:
            kind = f"waiting ({wait_type})"
        self.states[kind] = self.states.get(kind, 0) + 1

    def line(self) -> str:
        # Shares of the samples taken inside a transaction (start-up and the time between batches are idle).
        busy = {kind: count for kind, count in self.states.items() if kind != "idle"}
        total = sum(busy.values()) or 1
        shares = ", ".join(f"{kind} {count / total:.1%}" for kind, count in
                           sorted(busy.items(), key=lambda item: -item[1]))
        return (f"workers' PostgreSQL backends: CPU {sum(self.cpu.values()):.1f} s; "
                f"sampled inside transactions: {shares}")


def django_start(args) -> None:
    """Point Django at a fresh benchmark database, configured as in production, and migrate it."""
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    os.environ["DATABASE_URL"] = recreate_database(server, args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    # As in production: with DEBUG on, Django would also format and keep every statement it sends.
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# What a statement of the run is, by how its SQL starts (the first match wins); COPY does not pass through
# Django's execute wrapper, so the COPYs and COMMITs are the PostgreSQL CPU left over.
STATEMENT_KINDS = (
    ("deferred foreign-key checks", "SET CONSTRAINTS"),
    ("invoice numbering", "UPDATE payments_invoice"),
    ("subscription rows", "UPDATE subscriptions_subscription"),
    ("id reservation", "WITH seq AS MATERIALIZED"),
    ("claiming", 'SELECT "subscriptions_subscription"."id" AS "id"'),
)


@dataclass
class StatementCosts:
    """A Django execute wrapper adding each statement's PostgreSQL backend CPU (from /proc) to its kind."""

    pid: int
    seconds: dict[str, float] = dataclass_field(default_factory=dict)

    def __call__(self, execute, sql, params, many, context):
        before = backend_cpu_seconds(self.pid) or 0.0
        try:
            return execute(sql, params, many, context)
        finally:
            kind = next((name for name, start in STATEMENT_KINDS if sql.lstrip().startswith(start)),
                        "other statements")
            self.seconds[kind] = self.seconds.get(kind, 0.0) + (backend_cpu_seconds(self.pid) or 0.0) - before

    @staticmethod
    def line(seconds: dict[str, float], *, total: float) -> str:
        parts = [f"{kind} {value:.1f} s" for kind, value in sorted(seconds.items(), key=lambda item: -item[1])]
        parts.append(f"COPY, COMMIT and the rest {total - sum(seconds.values()):.1f} s")
        return "PostgreSQL CPU by statement: " + ", ".join(parts)


@dataclass
class FirstRun:
    summaries: list[str]
    elapsed: float
    samples: "BackendSamples | None"
    step_seconds: dict[str, list[float]]
    # PostgreSQL CPU seconds by kind of statement (StatementCosts), one process only.
    statements: dict[str, float]
    client_cpu: float
    server_cpu: float | None
    inserted: int


def first_run(args) -> FirstRun:
    """Time the run over everything seeded: in this process (with per-step times) or in worker processes."""
    from payments.billing.run import billing_run

    before = table_counts()
    # Per step: wall seconds, this process's CPU seconds, its PostgreSQL backend's CPU seconds.
    step_seconds: dict[str, list[float]] = {}
    pid = backend_pid()
    mark = [time.perf_counter(), time.process_time(), backend_cpu_seconds(pid) or 0.0]

    def progress(step: str, handled: int) -> None:
        now = [time.perf_counter(), time.process_time(), backend_cpu_seconds(pid) or 0.0]
        totals = step_seconds.setdefault(step, [0.0, 0.0, 0.0])
        for index in range(3):
            totals[index] += now[index] - mark[index]
        mark[:] = now

    server_cpu = backend_cpu_seconds(pid)
    client_cpu = time.process_time()
    started = mark[0] = time.perf_counter()
    mark[1], mark[2] = client_cpu, server_cpu or 0.0
    samples = None
    costs = StatementCosts(pid=pid)
    if args.workers == 1:
        from django.db import connection

        with connection.execute_wrapper(costs):
            summaries = [billing_run(as_of=AS_OF, batch_size=args.batch_size, progress=progress).line()]
    else:
        summaries, samples = run_workers(args)
    elapsed = time.perf_counter() - started
    children = os.times()
    client_cpu = time.process_time() - client_cpu + children.children_user + children.children_system
    server_cpu = backend_cpu_seconds(pid) - server_cpu if server_cpu is not None and args.workers == 1 else None
    after = table_counts()
    return FirstRun(summaries=summaries, elapsed=elapsed, samples=samples, step_seconds=step_seconds,
                    statements=costs.seconds, client_cpu=client_cpu,
                    server_cpu=server_cpu, inserted=sum(after[t] - before[t] for t in TABLES))


def first_run_check_and_print(run: FirstRun, *, n: int, workers: int) -> None:
    """Every subscription renewed, invoiced and refilled exactly once; then the figures."""
    from payments.models import Invoice
    from subscriptions.models import Subscription

    updated = n + Invoice.objects.count()  # every subscription moved on, every invoice numbered as it is issued
    renewed = Subscription.objects.filter(current_period_start=AS_OF).count()
    invoiced = Invoice.objects.filter(period_start=AS_OF).values("subscription_id").distinct().count()
    refilled = table_counts()["credits_creditgrant"]
    usage_lines = Invoice.objects.filter(lines__kind="usage").count()
    assert renewed == invoiced == refilled == n, (renewed, invoiced, refilled)
    assert Invoice.objects.count() == n and usage_lines == len(range(0, n, 3)), usage_lines
    elapsed = run.elapsed
    print(f"first run:  {elapsed:.1f} s with {workers} worker(s)")
    for line in run.summaries:
        print(f"            {line}")
    if run.step_seconds:
        steps = ", ".join(f"{step} {wall:.1f} s" for step, (wall, _, _) in run.step_seconds.items())
        print(f"            by step: {steps}")
        cpu = ", ".join(f"{step} {app:.1f} s / {pg:.1f} s" for step, (_, app, pg) in run.step_seconds.items())
        print(f"            CPU by step (run / PostgreSQL): {cpu}")
    if run.statements and run.server_cpu is not None:
        print(f"            {StatementCosts.line(run.statements, total=run.server_cpu)}")
    # On a shared machine wall time includes waiting for the CPU; these say what the run itself used.
    server = f", its PostgreSQL backend {run.server_cpu:.1f} s" if run.server_cpu is not None else ""
    print(f"            CPU used: run process(es) {run.client_cpu:.1f} s{server}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if run.samples is not None:
        print(f"            {run.samples.line()}")
    print(f"            {renewed:,} renewed, {invoiced:,} invoiced ({usage_lines:,} with usage), "
          f"{refilled:,} refilled: all of them")
    print(f"            {run.inserted:,} rows inserted + {updated:,} rows updated = "
          f"{(run.inserted + updated) / elapsed:,.0f} rows/s ({n / elapsed:,.0f} subscriptions/s)")
    if run.server_cpu:
        # The run and its backend take turns (the run waits for each statement), so their CPU seconds added
        # up are what the run would take with the machine to itself: the figure to read on a busy machine.
        busy = run.client_cpu + run.server_cpu
        print(f"            on CPU alone (run + PostgreSQL CPU, {busy:.1f} s): "
              f"{(run.inserted + updated) / busy:,.0f} rows/s")


def second_run(args, *, n: int) -> None:
    """Run again at the same instant: nothing is billed twice; then `billing verify` finds nothing."""
    from payments.billing.run import billing_run
    from payments.billing.verify import billing_verify
    from payments.models import Invoice

    started = time.perf_counter()
    second = billing_run(as_of=AS_OF, batch_size=args.batch_size)
    again = time.perf_counter() - started
    assert second.counts.get("renewed", 0) == second.counts.get("invoiced", 0) == 0
    assert Invoice.objects.count() == n
    print(f"second run: {again:.1f} s  {second.line()}  (nothing billed twice)")
    mismatches = billing_verify()
    print(f"billing verify: {'clean' if not mismatches else f'{len(mismatches)} mismatches'}")
    if mismatches:
        raise SystemExit(1)


def main() -> None:
    args = parse_args()
    django_start(args)
    n = args.subscriptions
    seeded = seed(n)
    print(f"seeded {n:,} subscriptions and {seeded['events']:,} usage events in {seeded['seconds']:.1f} s (COPY)")
    # The reference COPY is measured before the run and after it, REFERENCE_SAMPLES times each, and its median
    # taken: this machine's speed drifts by up to 2 x within minutes, and one COPY of a second or two, taken
    # once, made the run's share swing with it (0.22 x and 0.31 x for the same code on one evening).
    copies = [reference_copy(n) for _ in range(REFERENCE_SAMPLES)]
    first_run_check_and_print(first_run(args), n=n, workers=args.workers)
    second_run(args, n=n)
    copies += [reference_copy(n) for _ in range(REFERENCE_SAMPLES)]
    insert = reference_insert(n)
    copy, copy_cpu = statistics.median(c[0] for c in copies), statistics.median(c[1] for c in copies)
    print(f"reference:  raw COPY {copy:,.0f} rows/s, raw 1,000-row INSERT {insert:,.0f} "
          f"rows/s (invoice-shaped rows, same server, same run); raw COPY on CPU alone "
          f"{copy_cpu:,.0f} rows/s")
    print(f"            raw COPY, the median of {len(copies)}: before the run "
          + ", ".join(f"{c[0]:,.0f}" for c in copies[:REFERENCE_SAMPLES]) + " rows/s; after it "
          + ", ".join(f"{c[0]:,.0f}" for c in copies[REFERENCE_SAMPLES:]) + " rows/s")


if __name__ == "__main__":
    main()
