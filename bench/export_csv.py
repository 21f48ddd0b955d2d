"""CSV export of usage events: rows/s and peak memory (RSS) for a million rows, beside PostgreSQL's own
`COPY ... TO STDOUT WITH CSV` of the same rows and the same export of a tenth of them.

    .venv/bin/python bench/export_csv.py [--rows 1000000] [--database billing_bench_export]

It recreates its own database, migrates it, COPYs the usage events in (a third with the typed AI
dimensions), then runs the export in a fresh process for each size: the very code the API's
`usage/events/export/` and the admin's export action stream (`core.exports.csv_export_response` over
`usage_event_list()`), written to /dev/null. Peak RSS is the process's `ru_maxrss`; the same figure for
a tenth of the rows shows the memory does not grow with the export.
"""

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = "postgres://postgres@127.0.0.1:5432"
COLUMNS = ("customer_id, meter_id, quantity, occurred_at, idempotency_key, properties, received_at, tokens_used, "
           "cost, endpoint")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default="billing_bench_export")
    parser.add_argument("--export-only", type=int, help=argparse.SUPPRESS)  # the child process: export N rows
    return parser.parse_args()


def setup_django(database: str) -> None:
    os.environ.update({"DATABASE_URL": f"{PG}/{database}", "DATABASE_POOL_MAX_SIZE": "0", "LOG_LEVEL": "WARNING"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()


def seed(database: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    env = {**os.environ, "DATABASE_URL": f"{PG}/{database}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    from django.db import connection

    from subscriptions.models import Customer
    from usage.models import Meter

    customer = Customer.objects.create(name="Bench", email="bench@example.com", currency="USD").pk
    meter = Meter.objects.create(code="api-calls", name="API calls").pk
    connection.close()
    with psycopg.connect(f"{PG}/{database}") as conn:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        with conn.cursor().copy(f"COPY usage_usageevent ({COLUMNS}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for n in range(rows):
                at = (start + timedelta(seconds=n * 7)).isoformat()
                dims = (f"{n % 5000}\t0.{n % 997:03d}\t/v1/chat" if n % 3 == 0 else "\\N\t\\N\t")
                properties = json.dumps({"n": n % 13})
                buffer.write(f"{customer}\t{meter}\t{n % 9 + 1}\t{at}\tk{n}\t{properties}\t{at}\t{dims}\n")
                if n % 50_000 == 49_999:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        conn.commit()


def export_child(rows: int) -> None:
    """In a fresh process: stream the export of the first `rows` events to /dev/null; print one JSON line."""
    from django.db import connection
    from django.utils import timezone

    from core.exports import csv_export_response
    from usage.selectors import USAGE_EVENT_EXPORT, usage_event_list

    connection.ensure_connection()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queryset = usage_event_list().order_by("pk")[:rows]
    started = time.monotonic()
    response = csv_export_response(queryset=queryset, spec=USAGE_EVENT_EXPORT, stamp=timezone.now().isoformat())
    written = lines = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.streaming_content:
            sink.write(chunk)
            written += len(chunk)
            lines += 1
    elapsed = time.monotonic() - started
    print(json.dumps({"rows": lines - 1, "bytes": written, "seconds": elapsed, "rss_before_kib": rss_before,
                      "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_export(args, rows: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--database", args.database, "--export-only", str(rows)],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def copy_out_reference(database: str, rows: int) -> float:
    import psycopg

    query = (f"COPY (SELECT e.id, e.customer_id, m.code, e.quantity, e.occurred_at, e.idempotency_key, e.tokens_used, "
             f"e.response_time_ms, e.cost, e.request_id, e.batch_id, e.endpoint, e.language_code, e.category, "
             f"e.properties, e.received_at FROM usage_usageevent e JOIN usage_meter m ON m.id = e.meter_id "
             f"ORDER BY e.id LIMIT {rows}) TO STDOUT WITH CSV HEADER")
    with psycopg.connect(f"{PG}/{database}") as conn, open(os.devnull, "wb") as sink:
        started = time.monotonic()
        with conn.cursor().copy(query) as copy:
            for data in copy:
                sink.write(data)
        return time.monotonic() - started


def main():
    args = parse_args()
    if args.export_only:
        setup_django(args.database)
        return export_child(args.export_only)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    setup_django(args.database)
    started = time.monotonic()
    seed(args.database, args.rows)
    print(f"seeded {args.rows:,} usage events by COPY in {time.monotonic() - started:.1f} s; "
          f"{os.cpu_count()} CPUs; load average before the run: {load}")
    small = run_export(args, args.rows // 10)
    full = run_export(args, args.rows)
    copy_seconds = copy_out_reference(args.database, args.rows)
    for label, result in ((f"export of {args.rows // 10:,}", small), (f"export of {args.rows:,}", full)):
        rate = result["rows"] / result["seconds"]
        print(f"{label:<22}: {result['rows']:>9,} rows, {result['bytes'] / 2**20:7.1f} MiB in "
              f"{result['seconds']:6.2f} s -> {rate:>9,.0f} rows/s; peak RSS {result['rss_peak_kib'] / 1024:6.1f} MiB "
              f"(after start-up {result['rss_before_kib'] / 1024:.1f} MiB)")
    print(f"{'PostgreSQL COPY TO':<22}: {args.rows:>9,} rows in {copy_seconds:6.2f} s -> "
          f"{args.rows / copy_seconds:>9,.0f} rows/s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
