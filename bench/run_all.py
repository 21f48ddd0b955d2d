"""`make bench`: every benchmark in bench/ with bounded sizes, then README's benchmark table from their output.

    .venv/bin/python bench/run_all.py [--only credit_debits,usage_ingest] [--quick]

Each benchmark runs as its own process with the arguments below (the whole set takes about 10 minutes on
the 2-core machine; `--quick` shrinks the billing run to 20,000 subscriptions for a smoke run whose figures
do not go in the README). Each one creates and drops its own databases on the PostgreSQL at 127.0.0.1:5432
and uses Redis on 127.0.0.1:6379. A benchmark whose output lacks a figure, or that exits non-zero, fails
the whole command after the others have run. The table rows are printed last, with the 1-minute load
average around each benchmark, ready to paste into README.md.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ".venv/bin/python"
PG = "postgres://postgres@127.0.0.1:5432"


@dataclass
class Bench:
    key: str
    what: str
    # As README shows it; `argv` and `env` are what actually runs.
    command: str
    argv: list[str]
    env: dict = field(default_factory=dict)
    databases: tuple[str, ...] = ()


def benches(quick: bool) -> list[Bench]:
    subscriptions = "20000" if quick else "100000"
    engine = {"DATABASE_URL": f"{PG}/postgres"}
    return [
        Bench("billing_run", f"`billing run`, {int(subscriptions):,} subscriptions due (a third with usage), 1 process",
              f"DATABASE_URL={PG}/postgres {PYTHON} bench/billing_run.py --subscriptions {subscriptions}",
              ["bench/billing_run.py", "--subscriptions", subscriptions], engine),
        Bench("billing_run_2", "the same with 2 concurrent processes",
              f"... bench/billing_run.py --subscriptions {subscriptions} --workers 2",
              ["bench/billing_run.py", "--subscriptions", subscriptions, "--workers", "2"], engine),
        Bench("credit_debits", "credit debits, 8 concurrent clients (distinct customers / one hot customer), "
              "3 rounds, each way beside its reference",
              f"{PYTHON} bench/credit_debits.py --seconds 5", ["bench/credit_debits.py", "--seconds", "5"]),
        Bench("usage_ingest", "usage ingestion over HTTP (gunicorn, 3 workers, batches of 1,000), without and "
              "with a credit debit per event", f"{PYTHON} bench/usage_ingest.py --seconds 10",
              ["bench/usage_ingest.py", "--seconds", "10"]),
        Bench("ws_fanout", "WebSocket fan-out, mixed topics, 1,000 clients on 2 uvicorn processes (the Procfile's) + "
              "Redis, 100 changes at 5/s",
              f"CHANNEL_LAYER_PREFIX=bench DATABASE_URL={PG}/billing_live REDIS_URL=redis://127.0.0.1:6379/1 "
              f"{PYTHON} bench/ws_fanout.py --clients 1000 --changes 100 --rate 5",
              ["bench/ws_fanout.py", "--clients", "1000", "--changes", "100", "--rate", "5"],
              {"DATABASE_URL": f"{PG}/billing_live", "REDIS_URL": "redis://127.0.0.1:6379/1",
               "CHANNEL_LAYER_PREFIX": "bench"}, ("billing_live",)),
        Bench("webhooks", "Stripe webhook deliveries: acknowledged by one web process (verify, store, defer "
              "the apply job), then applied by one worker (payment succeeded, invoice paid, subscription active)",
              f"DATABASE_URL={PG}/billing_webhooks {PYTHON} bench/webhook_throughput.py 1000",
              ["bench/webhook_throughput.py", "1000"], {"DATABASE_URL": f"{PG}/billing_webhooks"},
              ("billing_webhooks",)),
        Bench("jobs", "Jobs: invoices finalized with an email job each, 2 workers x 4 (Procrastinate)",
              f"DATABASE_URL={PG}/postgres {PYTHON} bench/jobs_throughput.py --invoices 3000 --backlog 2000",
              ["bench/jobs_throughput.py", "--invoices", "3000", "--backlog", "2000"], engine),
        Bench("webhooks_out", "Outbound webhooks: invoices finalized, one loopback endpoint, 2 workers x 4",
              f"DATABASE_URL={PG}/postgres {PYTHON} bench/webhooks_outbound.py --invoices 3000 --backlog 1000",
              ["bench/webhooks_outbound.py", "--invoices", "3000", "--backlog", "1000"], engine),
        Bench("export_csv", "CSV export of usage events, streamed (`core.exports`)",
              f"DATABASE_URL={PG}/postgres {PYTHON} bench/export_csv.py --rows 300000",
              ["bench/export_csv.py", "--rows", "300000"], engine),
        Bench("reports", "finance reports over a year, 10,000 customers, p95 of 3 runs",
              f"DATABASE_URL={PG}/postgres {PYTHON} bench/reports_speed.py --customers 10000 --runs 3",
              ["bench/reports_speed.py", "--customers", "10000", "--runs", "3"], engine),
    ]


def number(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if not found:
        raise ValueError(f"no match for {pattern!r}")
    return found.group(1)


def billing_run_cells(out: str) -> tuple[str, str]:
    wall = number(r"first run:\s+([\d.]+) s", out)
    rows = number(r"= ([\d,]+) rows/s", out)
    again = number(r"second run: ([\d.]+) s", out)
    steps = re.search(r"by step: (.*)", out)
    cpu = re.search(r"CPU used: (.*?);", out)
    copy, insert = number(r"raw COPY ([\d,]+) rows/s", out), number(r"1,000-row INSERT ([\d,]+) rows/s", out)
    ratio = int(rows.replace(",", "")) / int(copy.replace(",", ""))
    detail = f" ({steps.group(1)})" if steps else ""
    alone = re.search(r"on CPU alone \(run \+ PostgreSQL CPU, ([\d.]+) s\): ([\d,]+) rows/s", out)
    cpu_steps = re.search(r"CPU by step \(run / PostgreSQL\): (.*)", out)
    cpu_text = f"; CPU: {cpu.group(1)}" if cpu else ""
    cpu_text += f" (by step, run / PostgreSQL: {cpu_steps.group(1)})" if cpu_steps else ""
    copy_alone = re.search(r"raw COPY on CPU alone ([\d,]+) rows/s", out)
    if alone and copy_alone:
        share = int(alone.group(2).replace(",", "")) / int(copy_alone.group(1).replace(",", ""))
        cpu_text += (f"; on CPU alone {alone.group(2)} rows/s = {share:.2f} x COPY on CPU alone "
                     f"({copy_alone.group(1)} rows/s)")
    verify = re.search(r"billing verify: (\w+)", out)
    verified = f"; `billing verify` {verify.group(1)}" if verify else ""
    return (f"{wall} s{detail}; {rows} rows/s = **{ratio:.2f} x COPY**{cpu_text}; second run {again} s, "
            f"nothing billed{verified}", f"raw COPY {copy} rows/s (median of 4, before and after the run), "
            f"raw 1,000-row INSERT {insert} rows/s")


def credit_debits_cells(out: str) -> tuple[str, str]:
    cells = []
    references = []
    for label in ("distinct customers", "one hot customer"):
        line = number(rf"(?m)^{label}\s+(.*)$", out)
        raw, service, service_x, http, http_x = re.match(
            r"([\d,]+)/s\s+([\d,]+)/s \(([\d.]+) x\)\s+([\d,]+)/s \(([\d.]+) x\)", line).groups()
        scenario = "distinct" if label.startswith("distinct") else "hot"
        rounds = re.search(rf"each round's share of its own reference, {scenario}: service ([\d. ]+); http ([\d. ]+)",
                           out)
        each = (f"; rounds: service {rounds.group(1).strip()}, HTTP {rounds.group(2).strip()}") if rounds else ""
        cells.append(f"{label}: service {service}/s (**{service_x} x**), HTTP {http}/s ({http_x} x{each})")
        references.append(f"{label}: {raw}/s")
    stored = number(r"ledger = balance: (\w+)", out)
    return "; ".join(cells) + f"; stored once, ledger = balance: {stored}", \
        "raw SELECT ... FOR UPDATE + UPDATE + INSERT, 8 clients: " + "; ".join(references)


def usage_ingest_cells(out: str) -> tuple[str, str]:
    plain = re.search(r"HTTP ingestion :.*?-> +([\d,]+) events/s \(([\d.]+) x COPY\)", out).groups()
    credits = re.search(r"with credits:.*?-> +([\d,]+) events/s \(([\d.]+) x COPY\)", out).groups()
    copy = number(r"PostgreSQL COPY:.*?-> +([\d,]+) rows/s", out)
    stored = all(flag == "True" for flag in re.findall(r"stored once \(\w+\): (\w+)", out))
    return (f"{plain[0]} events/s (**{plain[1]} x COPY**); with a credit debit per event {credits[0]} events/s "
            f"(**{credits[1]} x COPY**); each stored (and paid for) once: {stored}",
            f"PostgreSQL COPY of the same rows: {copy} rows/s")


def ws_fanout_cells(out: str) -> tuple[str, str]:
    fanout = re.search(r"1000 clients: delivered ([\d,]+) / ([\d,]+); latency p50 ([\d.]+) ms, p99 ([\d.]+) ms",
                       out).groups()
    single = re.search(r"1 client: delivered [\d,]+ / [\d,]+; latency p50 ([\d.]+) ms, p99 ([\d.]+) ms",
                       out).groups()
    cpu = re.findall(r"\((\d+) us per delivered message\)", out)
    return (f"{fanout[0]} / {fanout[1]} delivered; p50 {fanout[2]} ms, p99 {fanout[3]} ms (target 100 ms); "
            f"server CPU {cpu[0]} us per delivered message (target 30 us)",
            f"1 client, same run: p50 {single[0]} ms, p99 {single[1]} ms; {cpu[1]} us per delivered message")


def webhooks_cells(out: str) -> tuple[str, str]:
    ack = re.search(r"defer the apply job\): (\d+)/s; p50 ([\d.]+) ms, p95 ([\d.]+) ms", out).groups()
    duplicates = number(r"nothing deferred\): (\d+)/s", out)
    applied = number(r"subscription active\): (\d+) events/s", out)
    reference = re.search(r"GET /healthz in the same run: (\d+)/s; p50 ([\d.]+) ms, p95 ([\d.]+) ms", out).groups()
    return (f"acknowledged {ack[0]}/s, p50 {ack[1]} ms, p95 {ack[2]} ms (target p95 < 20 ms, >= 500/s); "
            f"duplicates refused at {duplicates}/s; applied by 1 worker at {applied} events/s",
            f"`GET /healthz` in the same run: {reference[0]}/s, p50 {reference[1]} ms, p95 {reference[2]} ms")


def jobs_cells(out: str) -> tuple[str, str]:
    drained = number(r"started: ([\d,]+) jobs/s", out)
    finalized = number(r"invoices finalized \(([\d,]+)/s", out)
    p50, p99 = re.search(r"commit to sent: p50 ([\d,]+) ms, p99 ([\d,]+) ms", out).groups()
    single, batched = re.search(r"raw enqueue ([\d,]+) jobs/s one per transaction, ([\d,]+) jobs/s", out).groups()
    return (f"workers drain a backlog at {drained} jobs/s; invoices finalized at {finalized}/s, each emailed once, "
            f"commit to sent p50 {p50} ms, p99 {p99} ms",
            f"Procrastinate's raw enqueue: {single} jobs/s one per transaction, {batched} jobs/s in batches of 1,000")


def webhooks_out_cells(out: str) -> tuple[str, str]:
    finalized, live = re.search(r"invoices finalized \(([\d,]+)/s.*?: ([\d,]+) deliveries/s", out, flags=re.S).groups()
    p50, p99 = re.search(r"commit to delivery: p50 ([\d,]+) ms, p99 ([\d,]+) ms", out).groups()
    once = re.search(r"every event delivered once: (\w+)", out).group(1)
    single, batched = re.search(r"raw enqueue ([\d,]+) jobs/s one per transaction, ([\d,]+) jobs/s", out).groups()
    return (f"invoices finalized at {finalized}/s, delivered at {live} deliveries/s; commit to delivery p50 {p50} ms, "
            f"p99 {p99} ms; every event delivered once, signed: {once}",
            f"Procrastinate's raw enqueue: {single} jobs/s one per transaction, {batched} jobs/s in batches of 1,000")


def export_cells(out: str) -> tuple[str, str]:
    full = re.findall(r"export of [\d,]+\s*: +([\d,]+) rows.*?-> +([\d,]+) rows/s; peak RSS +([\d.]+) MiB", out)
    (small_rows, _, small_rss), (rows, rate, rss) = full
    copy = number(r"COPY TO\s*: +[\d,]+ rows in +[\d.]+ s -> +([\d,]+) rows/s", out)
    return (f"{rows} rows at {rate} rows/s, peak RSS {rss} MiB ({small_rows} rows: {small_rss} MiB)",
            f"PostgreSQL COPY TO: {copy} rows/s")


def reports_cells(out: str) -> tuple[str, str]:
    timings = re.findall(r"^(\S.*?)\s+p95\s+([\d.]+) ms", out, flags=re.M)
    reference = [p95 for name, p95 in timings if name.startswith("count(*)")]
    rest = "; ".join(f"{name.strip()} {float(p95):,.0f} ms" for name, p95 in timings if not name.startswith("count(*)"))
    return f"p95: {rest}", f"plain `count(*)` over the same rows: {float(reference[0]):,.0f} ms" if reference else "—"


CELLS = {"billing_run": billing_run_cells, "billing_run_2": billing_run_cells, "credit_debits": credit_debits_cells,
         "usage_ingest": usage_ingest_cells, "ws_fanout": ws_fanout_cells, "webhooks": webhooks_cells,
         "jobs": jobs_cells, "webhooks_out": webhooks_out_cells, "export_csv": export_cells, "reports": reports_cells}


def databases_ensure(names: tuple[str, ...]) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        for name in names:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')


def run(bench: Bench) -> tuple[str, str, str]:
    """Run one benchmark; (its output, load average before, after)."""
    databases_ensure(bench.databases)
    load_before = f"{os.getloadavg()[0]:.1f}"
    env = {**os.environ, **bench.env}
    started = time.monotonic()
    done = subprocess.run([PYTHON, *bench.argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    print(f"--- {bench.key} ({time.monotonic() - started:.0f} s, exit {done.returncode})\n{done.stdout}"
          f"{done.stderr[-2000:] if done.returncode else ''}", flush=True)
    if done.returncode:
        raise RuntimeError(f"{bench.key} exited {done.returncode}")
    return done.stdout, load_before, f"{os.getloadavg()[0]:.1f}"


def seed_row() -> str:
    """`seed --demo 25` on a fresh SQLite database (the embedded default)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
        env["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        load_before = f"{os.getloadavg()[0]:.1f}"
        started = time.monotonic()
        subprocess.run([PYTHON, "manage.py", "seed", "--demo", "25"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        elapsed = time.monotonic() - started
    return (f"| `seed --demo 25` on the embedded default (SQLite) | `env -u DATABASE_URL {PYTHON} manage.py seed "
            f"--demo 25` on a fresh database | {elapsed:.1f} s for 25 customers, on a migrated database "
            f"(load {load_before}) | — |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated keys: " + ", ".join(CELLS))
    parser.add_argument("--quick", action="store_true", help="a 20,000-subscription billing run")
    args = parser.parse_args()
    chosen = [b for b in benches(args.quick) if not args.only or b.key in args.only.split(",")]
    started = datetime.now(UTC)
    rows, failures = [], []
    for bench in chosen:
        try:
            out, load_before, load_after = run(bench)
            result, reference = CELLS[bench.key](out)
        except (RuntimeError, ValueError, AttributeError, subprocess.TimeoutExpired) as exc:
            failures.append(f"{bench.key}: {exc}")
            continue
        rows.append(f"| {bench.what} | `{bench.command}` | {result} (load {load_before} -> {load_after}) "
                    f"| {reference} |")
    if not args.only or "seed" in args.only.split(","):
        rows.append(seed_row())
    print(f"\nMeasured {started:%Y-%m-%d %H:%M} UTC by `make bench` on {os.cpu_count()} cores; "
          f"1-minute load average now {os.getloadavg()[0]:.1f}.\n")
    print("| what | command | result | reference measured in the same run |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))
    if failures:
        print("\nFAILED: " + "; ".join(failures), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
