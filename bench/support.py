"""What the HTTP benchmarks share: their own database, production-like settings, a gunicorn on loopback."""

import http.client
import os
import secrets
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def server_env(*, database: str, redis: str) -> dict:
    """Production settings (DEBUG off) on the benchmark's database; `redis` '' for no Redis."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"{PG}/{database}", "REDIS_URL": redis, "DEBUG": "false",
        "SECRET_KEY": secrets.token_hex(32), "SECURE_SSL_REDIRECT": "false", "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "600",
    })
    return env


def start_server(*, server: str, workers: int, port: int, env: dict, worker_class: str = "sync",
                 threads: int = 1) -> subprocess.Popen:
    """gunicorn sync workers (or gthread ones: keep-alive connections, `threads` each; or daphne) on loopback,
    returned once /healthz answers 200.

    gunicorn loads the application before it forks (`--preload`: Django opens no connection while it
    loads), so every worker is ready when the first one answers and none is still importing Django
    while the clients are timed."""
    if server == "gunicorn":
        command = [str(ROOT / ".venv/bin/gunicorn"), "billing_project.wsgi:application", "--preload", "--workers",
                   str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "60",
                   "--worker-class", worker_class, "--threads", str(threads)]
    else:
        command = [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0",
                   "billing_project.asgi:application"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not answer on /healthz")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
