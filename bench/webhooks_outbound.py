"""Benchmark: 10,000 invoices finalized with one outbound webhook endpoint on loopback.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/webhooks_outbound.py

Like bench/jobs_throughput.py (whose helpers it uses), it (re)creates its own database (default
billing_bench_outbound), migrates it, seeds customers with one draft invoice each and registers one
endpoint for `invoice.finalized` pointing at a receiver in this process (a threaded HTTP server on
127.0.0.1 answering 200, recording when each event arrived; OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is
set for the run). It measures in one run:
- Procrastinate's raw enqueue rate (no-op jobs, one per transaction and 1,000 per statement): the engine's
  own figure, the reference;
- a backlog: `--backlog` invoices finalized while no worker runs, then `--workers` worker processes
  started: deliveries/s from the first delivery to the last (signing, POST, recording the attempt);
- live: `--invoices` invoices finalized through `invoice_finalize`, one transaction each (event, delivery
  and job written in it, with the invoice's email job), while the workers run: the delay from each
  invoice's commit to the receiver getting its event, p50 and p99, and deliveries/s.
It checks that every event reached the receiver exactly once and signed, and prints the load average."""

import argparse
import hashlib
import hmac
import json
import os
import signal
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import jobs_throughput  # noqa: E402 - the shared helpers: database, seed, raw rates, workers

SECRET = "whsec_bench"


class Receiver:
    """Records the arrival time of each invoice's event (and any repeat or bad signature)."""

    def __init__(self):
        self.arrived: dict[int, float] = {}
        self.repeats = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                at = time.time()
                receiver.note(body=body, signature=self.headers.get("Billing-Signature", ""), at=at)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def note(self, *, body: bytes, signature: str, at: float) -> None:
        parts = dict(item.split("=", 1) for item in signature.split(","))
        expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
        invoice_id = json.loads(body)["object"]["id"]
        with self.lock:
            if not hmac.compare_digest(expected, parts["v1"]):
                self.bad_signatures += 1
            if invoice_id in self.arrived:
                self.repeats += 1
            else:
                self.arrived[invoice_id] = at

    def wait_for(self, n: int, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrived) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(self.arrived)} of {n} events arrived in time")
            time.sleep(0.2)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--backlog", type=int, default=2_000, help="invoices finalized before the workers start")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker process")
    parser.add_argument("--raw-jobs", type=int, default=5_000, help="no-op jobs per raw enqueue measurement")
    parser.add_argument("--database", default="billing_bench_outbound")
    return parser.parse_args()


def endpoint_register(url: str) -> None:
    from outbound_webhooks.services import webhook_endpoint_create

    webhook_endpoint_create(url=url, event_types=["invoice.finalized"], secret=SECRET, description="bench")


def rate(times: list[float]) -> float:
    return (len(times) - 1) / (max(times) - min(times)) if len(times) > 1 else 0.0


def main() -> None:
    args = parse_args()
    os.environ["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"] = "true"  # the receiver is on loopback
    jobs_throughput.django_start(args)
    receiver = Receiver()
    endpoint_register(receiver.url)
    invoice_ids = jobs_throughput.seed(args.backlog + args.invoices)
    backlog_ids, live_ids = invoice_ids[:args.backlog], invoice_ids[args.backlog:]
    load_before = os.getloadavg()
    raw = jobs_throughput.raw_enqueue_rates(args.raw_jobs)
    jobs_throughput.finalize_all(backlog_ids)
    workers = jobs_throughput.workers_start(args)
    try:
        receiver.wait_for(args.backlog)
        drain = rate([receiver.arrived[pk] for pk in backlog_ids])
        committed, finalize_rate = jobs_throughput.finalize_all(live_ids)
        receiver.wait_for(args.backlog + args.invoices)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    load_after = os.getloadavg()
    ms = sorted((receiver.arrived[pk] - committed[pk]) * 1000 for pk in live_ids)
    live_rate = len(live_ids) / (max(receiver.arrived[pk] for pk in live_ids) - min(committed.values()))
    print(f"backlog: {args.backlog:,} deliveries queued, then {args.workers} workers x {args.concurrency} started: "
          f"{drain:,.0f} deliveries/s from the first delivery to the last")
    print(f"live: {args.invoices:,} invoices finalized ({finalize_rate:,.0f}/s, one transaction each, event + delivery "
          f"+ job written in it, plus its email job): {live_rate:,.0f} deliveries/s from the first commit to the "
          f"last delivery")
    print(f"commit to delivery: p50 {statistics.median(ms):,.0f} ms, p99 {jobs_throughput.percentile(ms, 99):,.0f} ms, "
          f"max {ms[-1]:,.0f} ms")
    print(f"every event delivered once: {len(receiver.arrived) == len(invoice_ids) and receiver.repeats == 0} "
          f"(repeats {receiver.repeats}, bad signatures {receiver.bad_signatures})")
    print(f"reference, same run: Procrastinate raw enqueue {raw['single']:,.0f} jobs/s one per transaction, "
          f"{raw['batched']:,.0f} jobs/s in batches of 1,000")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *load_after))


if __name__ == "__main__":
    main()
