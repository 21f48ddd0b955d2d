"""What the HTTP benchmarks share: their own database, production-like settings, a gunicorn on loopback."""

import http.client
import os
import re
import secrets
import shlex
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
    _wait_healthy(process, port)
    return process


def procfile_web_command(*, port: int, env: dict) -> list[str]:
    """The Procfile's `web` command as a deployment runs it (worker class, workers, threads, access log), its
    `${VAR:-default}`s filled from `env`, bound to `port` on loopback. `--preload` is added, as start_server
    does, so no worker is still importing Django while the clients are timed."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    expanded = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), line[len("web:"):])
    command = shlex.split(expanded)
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    return [str(ROOT / ".venv/bin" / command[0]), *command[1:], "--preload"]


def start_command(command: list[str], *, port: int, env: dict) -> subprocess.Popen:
    """Start `command` (its output discarded: the Procfile's access log goes to stdout), returned once
    /healthz answers 200."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _wait_healthy(process, port)
    return process


def _wait_healthy(process: subprocess.Popen, port: int) -> None:
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not answer on /healthz")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
