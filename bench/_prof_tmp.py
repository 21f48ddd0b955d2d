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
import base64
import gc
import json
import multiprocessing
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
    "uvicorn": lambda port: [sys.executable, "/tmp/fo/profserve.py", str(port)],
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


PAYMENT_EVENT = b'{"type": "payment.updated"'
SNAPSHOT = b'{"type": "snapshot"'
EVENT_ID_PREFIX = b'"data": {"id": '
TOPICS = ("payments", "credits")
OPCODE_TEXT, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x1, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final frame as a client must send it: masked (RFC 6455 section 5.3)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([0x80 | opcode, 0x80 | min(size, 126)]) + (size.to_bytes(2, "big") if size >= 126 else b"")
    return head + mask + bytes(byte ^ mask[n % 4] for n, byte in enumerate(payload))


class FrameClient(asyncio.Protocol):
    """One WebSocket connection of the load generator, on a bare asyncio protocol: it checks the handshake
    and its subscriptions' snapshots, answers pings, and records each event's arrival as the time its frame's
    last byte was read, keyed by topic initial and object id (sliced out of the server's fixed key order).
    No JSON parsing, no future and no task per message, so the client's own CPU, which shares the 2 cores
    with the servers, inflates the latencies it measures as little as possible."""

    def __init__(self, port: int, token: str, opened: asyncio.Future):
        self.port, self.token, self.opened = port, token, opened
        self.transport = None
        self.buffer = b""
        self.upgraded = False
        self.snapshots_due = len(TOPICS)
        self.received: dict[bytes, float] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                         f"Origin: http://127.0.0.1:{self.port}\r\nSec-WebSocket-Protocol: token, {self.token}\r\n"
                         "\r\n").encode())

    def connection_lost(self, exc) -> None:
        self.fail(f"connection lost: {exc}")

    def fail(self, reason: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(reason))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                self.buffer = buffer
                return
            if b" 101 " not in buffer[:buffer.find(b"\r\n")]:
                self.fail(buffer[:head_end].decode(errors="replace"))
                return
            self.upgraded, buffer = True, buffer[head_end + 4:]
            for topic in TOPICS:
                # limit 0: the bench wants events, not a page of history.
                message = {"action": "subscribe", "topic": topic, "params": {"limit": 0}}
                self.transport.write(client_frame(OPCODE_TEXT, json.dumps(message).encode()))
        self.buffer = buffer[self.frames(buffer, now):]

    def frames(self, buffer: bytes, now: float) -> int:
        """Handles every complete (unmasked, unfragmented: a server's) frame; returns where the rest starts."""
        position, size = 0, len(buffer)
        while size - position >= 2:
            length, start = buffer[position + 1] & 0x7F, position + 2
            if length >= 126:
                start += 2 if length == 126 else 8
                if start > size:
                    break
                length = int.from_bytes(buffer[position + 2:start], "big")
            if start + length > size:
                break
            self.frame(buffer[position] & 0x0F, buffer[start:start + length], now)
            position = start + length
        return position

    def frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == OPCODE_PING:
            self.transport.write(client_frame(OPCODE_PONG, payload))
        elif opcode == OPCODE_CLOSE:
            self.fail(f"closed by the server: {payload!r}")
        elif opcode != OPCODE_TEXT:
            return
        elif payload.startswith(SNAPSHOT):
            self.snapshots_due -= 1
            if self.snapshots_due == 0 and not self.opened.done():
                self.opened.set_result(None)
        elif not self.opened.done():
            self.fail(f"expected a snapshot, got {payload[:200]!r}")
        else:
            at = payload.find(EVENT_ID_PREFIX) + len(EVENT_ID_PREFIX)
            topic = b"p" if payload.startswith(PAYMENT_EVENT) else b"c"
            self.received[topic + payload[at:payload.find(b",", at)]] = now


# ------------------------------------------------------------------------- client processes (workers)


def client_worker(pipe) -> None:
    """A process of the load generator: opens the connections it is told to, and reports what they received."""
    import uvloop

    uvloop.run(serve_commands(pipe))


async def client_open(port: int, token: str) -> FrameClient:
    loop = asyncio.get_running_loop()
    opened = loop.create_future()
    _, client = await loop.create_connection(lambda: FrameClient(port, token, opened), "127.0.0.1", port)
    await asyncio.wait_for(opened, timeout=120)
    return client


async def serve_commands(pipe) -> None:
    loop = asyncio.get_running_loop()
    clients: list[FrameClient] = []
    opening = asyncio.Semaphore(50)

    async def open_one(port: int, token: str) -> FrameClient:
        async with opening:
            return await client_open(port, token)

    while True:
        # A thread waits for the next command: the loop's own reader would make the pipe non-blocking,
        # and a large reply would then fail half-sent.
        command, argument = await loop.run_in_executor(None, pipe.recv)
        if command == "open":
            clients.extend(await asyncio.gather(*(open_one(port, token) for port, token in argument)))
            gc.collect()
            gc.freeze()
            pipe.send(len(clients))
        elif command == "listen":
            for client in clients:
                client.received.clear()
            # No cycles are made while listening; a full collection over thousands of connections would
            # pause every one of this process's clients at once.
            gc.disable()
            pipe.send(cpu_seconds())
        elif command == "count":
            pipe.send(sum(len(client.received) for client in clients))
        elif command == "collect":
            gc.enable()
            pipe.send(([{key.decode(): at for key, at in client.received.items()} for client in clients],
                       cpu_seconds()))
        elif command == "close":
            for client in clients:
                client.transport.close()
            pipe.send(None)
            return


class ClientPool:
    """`processes` load-generator processes, driven over pipes by the bench's event loop."""

    def __init__(self, processes: int):
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=client_worker, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    async def ask(self, pipe, command: str, argument=None):
        pipe.send((command, argument))
        return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    async def ask_all(self, command: str, arguments: list | None = None) -> list:
        arguments = arguments or [None] * len(self.pipes)
        return await asyncio.gather(*(self.ask(pipe, command, argument)
                                      for pipe, argument in zip(self.pipes, arguments, strict=True)))

    def stop(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


async def run_phase(pool: ClientPool, payment_ids: list[int], rate: float, grace: float,
                    server_pids: list[int], clients: int) -> dict:
    server_before = [cpu_seconds(pid) for pid in server_pids]
    client_before = await pool.ask_all("listen")
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--publish", "--rate", str(rate), *map(str, payment_ids),
        cwd=BASE_DIR, stdout=asyncio.subprocess.PIPE)
    out, _ = await publisher.communicate()
    if publisher.returncode:
        sys.exit("the publisher failed")
    published = [json.loads(line) for line in out.decode().splitlines()]
    t0 = {p["key"]: p["t0"] for p in published}
    expected = clients * len(payment_ids)
    # Wait for stragglers, at most `grace` seconds after the last change.
    deadline = time.monotonic() + grace
    while sum(await pool.ask_all("count")) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    server_after = [cpu_seconds(pid) for pid in server_pids]
    collected = await pool.ask_all("collect")
    # Every (connection, change) pair is checked: an event counts once, for the connection that read it.
    latencies = sorted((at - t0[key]) * 1000 for received, _ in collected for per_client in received
                       for key, at in per_client.items() if key in t0)
    client_after = [cpu for _, cpu in collected]

    def spent(after, before) -> tuple[float, float]:
        pairs = list(zip(after, before, strict=True))
        return sum(a[0] - b[0] for a, b in pairs), sum(a[1] - b[1] for a, b in pairs)

    server_cpu, server_wait = spent(server_after, server_before)
    client_cpu, client_wait = spent(client_after, client_before)
    return {"expected": expected, "delivered": len(latencies), "latencies": latencies,
            "broadcast_ms": statistics.median(p["broadcast_ms"] for p in published),
            "server_cpu": server_cpu, "client_cpu": client_cpu, "server_wait": server_wait,
            "client_wait": client_wait}


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
    specs = [(ports[n % len(ports)], tokens[(n // len(ports)) % 2]) for n in range(args.clients)]
    ids = data["payment_ids"]
    pool = ClientPool(args.client_processes)
    try:
        # The reference: the first connection alone, in the first client process.
        await pool.ask_all("open", [[specs[0]]] + [[] for _ in pool.pipes[1:]])
        reference = await run_phase(pool, ids[:args.changes], args.rate, args.grace, server_pids, clients=1)
        started = time.monotonic()
        rest = specs[1:]
        await pool.ask_all("open", [rest[n::len(pool.pipes)] for n in range(len(pool.pipes))])
        print(f"{args.clients} clients in {len(pool.pipes)} processes connected and subscribed in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        fanout = await run_phase(pool, ids[args.changes:], args.rate, args.grace, server_pids, clients=args.clients)
        await pool.ask_all("close")
    finally:
        pool.stop()
    return fanout, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0, help="payment changes per second")
    parser.add_argument("--ports", type=lambda s: [int(p) for p in s.split(",")], default=[8212, 8213])
    parser.add_argument("--grace", type=float, default=30.0, help="seconds to wait for late events")
    parser.add_argument("--server", choices=sorted(SERVERS), default="daphne", help="the ASGI server to run")
    parser.add_argument("--client-processes", type=int, default=4,
                        help="load-generator processes the clients are spread over")
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
