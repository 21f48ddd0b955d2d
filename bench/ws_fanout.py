"""WebSocket fan-out: how fast committed changes on mixed topics reach 1,000 (or 5,000) live clients.

Two daphne processes on loopback share the Redis channel layer. Half the clients authenticate as staff,
half as the customer owning the objects, split evenly over both servers; each connection subscribes to
the `payments` and `credits` topics on the multiplexing `/ws/` endpoint, so every change is expected by
every client. A separate publisher process alternates a payment status change (`payment_transition`)
and a credit grant (`credit_grant`, a `credits` ledger event), each inside a transaction with the
broadcast from `transaction.on_commit`, as in production. Latency is measured from just before the
commit to the client's receipt of the event.

The reference, measured in the same run with the same servers and publisher: the same number of changes
delivered to a single client (fan-out 1), i.e. the floor of this path on this machine.

    CHANNEL_LAYER_PREFIX=bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_live \\
        REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/ws_fanout.py [--server daphne|uvicorn] \\
        [--clients 1000] [--changes 100] [--rate 5] [--ports 8212,8213]

The database must exist (`createdb -h 127.0.0.1 -U postgres billing_live`). Redis pub/sub ignores the
database number, so give the run a CHANNEL_LAYER_PREFIX of its own when others share the Redis.

Creates its own customer, staff user, tokens and pending payments in DATABASE_URL (migrated first).
Everything it starts is stopped on exit; the whole run is bounded by --deadline seconds.
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()


# ----------------------------------------------------------------------------------- publisher mode


def publish(payment_ids: list[int], rate: float) -> None:
    """Runs in its own process: `rate` committed changes per second, alternating a payment's status
    change and a credit grant to the payments' customer. Prints one JSON line per change with its event
    key (topic initial and id) and the wall-clock time just before its commit."""
    django_setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.db import transaction

    from core.audit import Actor
    from credits.services import credit_grant
    from payments.models import Payment, PaymentStatus
    from payments.services import payment_lock, payment_transition

    actor = Actor.system("bench-ws-fanout")
    customer = Payment.objects.select_related("customer").get(pk=payment_ids[0]).customer
    # Warm up like a running server: imports, the layer, and a first Redis round trip.
    async_to_sync(get_channel_layer().group_send)("bench.warmup", {"type": "bench.warmup"})
    start = time.monotonic()
    for n, payment_id in enumerate(payment_ids):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        with transaction.atomic():
            if n % 2 == 0:
                payment = payment_lock(payment_id=payment_id)
                payment_transition(payment=payment, to_status=PaymentStatus.PROCESSING, actor=actor)
                key = f"p{payment_id}"
            else:
                key = f"c{credit_grant(customer=customer, amount=1, source='promotion', actor=actor).entry.pk}"
            before_commit = time.time()
        committed_and_broadcast = time.time()
        print(json.dumps({"key": key, "t0": before_commit,
                          "broadcast_ms": (committed_and_broadcast - before_commit) * 1000}), flush=True)


# ---------------------------------------------------------------------------------------- the bench


def setup_data(changes: int) -> dict:
    """A customer on a plan with live updates and a staff user, with API tokens, and 2 x `changes`
    pending payments."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from payments.models import Payment, PaymentMethod
    from subscriptions.models import Customer, Plan, Subscription

    call_command("migrate", verbosity=0, interactive=False)
    User = get_user_model()
    tag = uuid.uuid4().hex[:8]
    staff = User.objects.create_user(username=f"bench-staff-{tag}", is_staff=True, is_superuser=True)
    customer = Customer.objects.create(name=f"Bench fan-out {tag}", email=f"bench-{tag}@example.com",
                                       user=User.objects.create_user(username=f"bench-customer-{tag}"))
    plan = Plan.objects.create(code=f"bench-{tag}", name="Bench", amount=0, features=["api_access", "live_updates"])
    now = timezone.now()
    Subscription.objects.create(customer=customer, plan=plan, status="active", billing_cycle_anchor=now,
                                current_period_start=now, current_period_end=now + timedelta(days=30))
    payments = Payment.objects.bulk_create([
        Payment(customer=customer, amount=100, currency=customer.currency, method=PaymentMethod.BANK_TRANSFER,
                provider="manual")
        for _ in range(2 * changes)
    ])
    data = {"staff_token": Token.objects.create(user=staff).key,
            "customer_token": Token.objects.create(user=customer.user).key,
            "payment_ids": [p.pk for p in payments]}
    connections.close_all()
    return data


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


SERVERS = {
    "daphne": lambda port: [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port),
                            "billing_project.asgi:application"],
    # uvicorn on uvloop with the websockets library's sans-I/O protocol.
    "uvicorn": lambda port: [sys.executable, "-m", "uvicorn", "billing_project.asgi:application", "--host",
                             "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "h11",
                             "--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log",
                             "--log-level", "warning"],
}


def start_servers(ports: list[int], log_dir: Path, server: str) -> list[subprocess.Popen]:
    for port in ports:
        if port_open(port):
            sys.exit(f"port {port} is already in use")
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    servers = [
        subprocess.Popen(SERVERS[server](port), cwd=BASE_DIR, env=env,
                         stdout=(log_dir / f"{server}-{port}.log").open("w"), stderr=subprocess.STDOUT)
        for port in ports
    ]
    deadline = time.monotonic() + 30
    while not all(port_open(port) for port in ports):
        if any(s.poll() is not None for s in servers) or time.monotonic() > deadline:
            stop(servers)
            sys.exit(f"{server} did not start; see {log_dir}")
        time.sleep(0.1)
    return servers


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


PAYMENT_EVENT = '{"type": "payment.updated"'
EVENT_ID_PREFIX = '"data": {"id": '
TOPICS = ("payments", "credits")


class Client:
    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.received: dict[str, float] = {}
        self.ws = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(f"ws://127.0.0.1:{self.port}/ws/", origin=f"http://127.0.0.1:{self.port}",
                                subprotocols=["token", self.token], proxy=None, compression=None,
                                open_timeout=60, ping_interval=None, max_queue=None)
        for topic in TOPICS:
            # limit 0: the bench wants events, not a page of history.
            await self.ws.send(json.dumps({"action": "subscribe", "topic": topic, "params": {"limit": 0}}))
            snapshot = json.loads(await self.ws.recv())
            assert snapshot["type"] == "snapshot", snapshot

    async def listen(self) -> None:
        # Only events arrive after the snapshot. The id is sliced out of the server's fixed key order
        # rather than parsed, so the clients' own CPU does not inflate the latency they measure.
        async for text in self.ws:
            now = time.time()
            start = text.index(EVENT_ID_PREFIX) + len(EVENT_ID_PREFIX)
            topic = "p" if text.startswith(PAYMENT_EVENT) else "c"
            self.received[topic + text[start:text.index(",", start)]] = now


async def run_phase(clients: list[Client], payment_ids: list[int], rate: float, grace: float,
                    server_pids: list[int]) -> dict:
    cpu_before = [cpu_seconds(pid) for pid in server_pids] + [cpu_seconds()]
    listeners = [asyncio.create_task(c.listen()) for c in clients]
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--publish", "--rate", str(rate), *map(str, payment_ids),
        cwd=BASE_DIR, stdout=asyncio.subprocess.PIPE)
    out, _ = await publisher.communicate()
    if publisher.returncode:
        sys.exit("the publisher failed")
    published = [json.loads(line) for line in out.decode().splitlines()]
    t0 = {p["key"]: p["t0"] for p in published}
    expected = len(clients) * len(payment_ids)
    # Wait for stragglers, at most `grace` seconds after the last change.
    deadline = time.monotonic() + grace
    while sum(len(c.received) for c in clients) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in listeners:
        task.cancel()
    cpu_after = [cpu_seconds(pid) for pid in server_pids] + [cpu_seconds()]
    cpu = [after[0] - before[0] for after, before in zip(cpu_after, cpu_before, strict=True)]
    waited = [after[1] - before[1] for after, before in zip(cpu_after, cpu_before, strict=True)]
    latencies = sorted((at - t0[pid]) * 1000 for c in clients for pid, at in c.received.items() if pid in t0)
    for c in clients:
        c.received.clear()
    return {"expected": expected, "delivered": len(latencies), "latencies": latencies,
            "broadcast_ms": statistics.median(p["broadcast_ms"] for p in published),
            "server_cpu": sum(cpu[:-1]), "client_cpu": cpu[-1], "server_wait": sum(waited[:-1]),
            "client_wait": waited[-1]}


def cpu_seconds(pid: int | str = "self") -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of a process's threads, from Linux
    schedstat: tells the cost of the work from the wait for a core that other processes hold."""
    on_cpu = waiting = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        run, wait, _ = (task / "schedstat").read_text().split()
        on_cpu, waiting = on_cpu + int(run), waiting + int(wait)
    return on_cpu / 1e9, waiting / 1e9


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def describe(result: dict, per_message_cpu: bool = True) -> str:
    lat = result["latencies"]
    per_message = (f" ({result['server_cpu'] / max(result['delivered'], 1) * 1e6:.0f} us per delivered message)"
                   if per_message_cpu else "")
    return (f"delivered {result['delivered']:,} / {result['expected']:,}; latency p50 {percentile(lat, 0.50):.1f} ms, "
            f"p99 {percentile(lat, 0.99):.1f} ms, max {lat[-1] if lat else float('nan'):.1f} ms "
            f"(of which publisher commit + broadcast, median {result['broadcast_ms']:.1f} ms)\n"
            f"      servers on CPU {result['server_cpu']:.1f} s{per_message}, "
            f"runnable but waiting for a CPU {result['server_wait']:.1f} s; "
            f"clients on CPU {result['client_cpu']:.1f} s, waiting {result['client_wait']:.1f} s")


async def bench(args, data: dict, server_pids: list[int]) -> tuple[dict, dict]:
    ports = args.ports
    tokens = [data["staff_token"], data["customer_token"]]
    clients = [Client(ports[n % len(ports)], tokens[(n // len(ports)) % 2]) for n in range(args.clients)]
    ids = data["payment_ids"]

    reference_client = clients[0]
    await reference_client.open()
    reference = await run_phase([reference_client], ids[:args.changes], args.rate, args.grace, server_pids)

    opening = asyncio.Semaphore(100)

    async def open_one(client: Client):
        async with opening:
            if client.ws is None:
                await client.open()

    started = time.monotonic()
    await asyncio.gather(*(open_one(c) for c in clients))
    print(f"{len(clients)} clients connected and subscribed in {time.monotonic() - started:.1f} s", flush=True)
    fanout = await run_phase(clients, ids[args.changes:], args.rate, args.grace, server_pids)
    await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
    return fanout, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0, help="payment changes per second")
    parser.add_argument("--ports", type=lambda s: [int(p) for p in s.split(",")], default=[8212, 8213])
    parser.add_argument("--grace", type=float, default=30.0, help="seconds to wait for late events")
    parser.add_argument("--server", choices=sorted(SERVERS), default="daphne", help="the ASGI server to run")
    parser.add_argument("--deadline", type=int, default=300, help="the whole run is stopped after this")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("payment_ids", nargs="*", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.publish:
        publish(args.payment_ids, args.rate)
        return
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: two processes need a shared database and layer")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.clients * 2 + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"bench exceeded its {args.deadline} s deadline"))
    signal.alarm(args.deadline)

    load_before = os.getloadavg()[0]
    django_setup()
    data = setup_data(args.changes)
    log_dir = Path(tempfile.mkdtemp(prefix="ws-fanout-"))
    servers = start_servers(args.ports, log_dir, args.server)
    try:
        fanout, reference = asyncio.run(bench(args, data, [s.pid for s in servers]))
    finally:
        stop(servers)
    per_port = args.clients // len(args.ports)
    print(f"ws_fanout: {args.clients} clients ({per_port} per {args.server} on ports {args.ports}, half staff, half "
          f"customer, each on topics {', '.join(TOPICS)}), {args.changes} changes (payments and credits "
          f"alternating) at {args.rate:g}/s, Redis {os.environ['REDIS_URL']}, "
          f"{os.cpu_count()} CPUs; 1-minute load average {load_before:.1f} before the run, "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"  {args.clients} clients: {describe(fanout)}")
    print(f"  reference, same run, 1 client: {describe(reference)}")
    p99 = percentile(fanout["latencies"], 0.99)
    target = 100 if args.clients <= 1000 else 250
    per_message = fanout["server_cpu"] / max(fanout["delivered"], 1) * 1e6
    print(f"  targets: p99 < {target} ms {'met' if p99 < target else 'MISSED'}; all {fanout['expected']:,} "
          f"delivered {'met' if fanout['delivered'] == fanout['expected'] else 'MISSED'}; server CPU per "
          f"delivered message <= 30 us {'met' if per_message <= 30 else 'MISSED'}")


if __name__ == "__main__":
    main()
