"""CPU per credit debit over HTTP, in one process: no server, no client, no network.

    .venv/bin/python bench/debit_cpu.py [--requests 2000] [--profile 25]

It recreates its own database (billing_bench_debit_cpu by default), gives one customer on an unlimited plan
a token and a large grant, then drives `--requests` `POST /api/v1/credits/debit/` (each with a fresh
idempotency key in the body, as bench/credit_debits.py sends them) through Django's WSGI handler with a
WSGI environ built here (django.test.Client costs more than the request it sends), with the production
settings bench/credit_debits.py gives gunicorn (DEBUG off, Redis cache). It prints the process CPU time per
request (`time.process_time`, which does not count PostgreSQL's or Redis's CPU), and with `--profile N` the
Python function calls per request and the N costliest functions under cProfile (cumulative, then own time).
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from support import recreate_database, server_env  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions (cProfile)")
    parser.add_argument("--header", action="store_true",
                        help="also send an Idempotency-Key header (bench/credit_debits.py sends none)")
    parser.add_argument("--database", default="billing_bench_debit_cpu")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2", help="cache for rate limits ('' for none)")
    return parser.parse_args()


def setup_token() -> str:
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
    user = get_user_model().objects.create_user("cpu")
    customer = customer_create(name="cpu", email="cpu@example.com", user=user)
    credit_grant(customer=customer, amount=10**12, source=CreditSource.PURCHASE, actor=actor)
    subscription_start(customer=customer, plan=plan, actor=actor)
    return Token.objects.create(user=user).key


def environ_for(token: str, index: int, header: bool) -> dict:
    body = json.dumps({"amount": 1, "reason": "bench", "idempotency_key": f"cpu-{index}"}).encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/credits/debit/", "QUERY_STRING": "", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": f"Token {token}", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if header:
        environ["HTTP_IDEMPOTENCY_KEY"] = f"cpu-header-{index}"
    return environ


def drive(application, token: str, start: int, count: int, header: bool) -> None:
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    for index in range(start, start + count):
        response = application(environ_for(token, index, header), start_response)
        b"".join(response)
        response.close()
    bad = [s for s in statuses if not s.startswith("201")]
    if bad:
        raise SystemExit(f"{len(bad)} debits failed: {bad[:3]}")


def main():
    args = parse_args()
    recreate_database(args.database)
    os.environ.update(server_env(database=args.database, redis=args.redis))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    call_command("migrate", verbosity=0)
    cache.clear()
    token = setup_token()
    application = get_wsgi_application()
    drive(application, token, 0, 200, args.header)  # warm: imports, the door map, the token and client caches
    queries_before = len(connection.queries)
    started, cpu = time.perf_counter(), time.process_time()
    drive(application, token, 1000, args.requests, args.header)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    print(f"{args.requests} debits over WSGI in one process: {cpu / args.requests * 1000:.3f} ms CPU "
          f"and {wall / args.requests * 1000:.3f} ms wall per request (queries logged: "
          f"{len(connection.queries) - queries_before})")
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(drive, application, token, 10**6, args.requests, args.header)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        # Unlike CPU time, the count of Python calls does not change with the machine's load.
        print(f"Python function calls per request (cProfile): {stats.total_calls / args.requests:,.0f}")
        stats.sort_stats("cumulative").print_stats(args.profile)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())


if __name__ == "__main__":
    main()
