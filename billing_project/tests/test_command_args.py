"""Every bad argument of every management command ends it with exit status 1 and one line."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from subscriptions.models import Plan

BAD_ARGUMENTS = [
    ("billing", ["run", "--as-of", ""]),
    ("billing", ["run", "--as-of", "0001-01-01"]),
    ("billing", ["run", "--as-of", "99999-01-01"]),
    ("billing", ["run", "--as-of", "9999-12-31T23:00:00-05:00"]),
    ("billing", ["run", "--as-of", "2026-01-01T00:00:00+17:00"]),
    ("billing", ["run", "--as-of", "2026-01-01\x00"]),
    ("billing", ["run", "--limit", "99999999999999999999"]),
    ("billing", ["run", "--limit", "-1"]),
    ("billing", ["run", "--limit", "1e3"]),
    ("billing", ["run", "--batch-size", "0"]),
    ("billing", ["run", "--batch-size", "10000000000"]),
    ("billing", ["preview", "a\x00b"]),
    ("billing", ["preview", "99999999999999999999"]),
    ("seed", ["--demo", "10000000000"]),
    ("seed", ["--demo", "-1"]),
    ("seed", ["--demo", "1e20"]),
    ("seed", ["--as-of", "0001-01-01"]),
    ("seed", ["--as-of", "99999-01-01"]),
    ("seed", ["--as-of", ""]),
    ("stripe_events", ["replay", "--since", "0001-01-01T00:00:00+01:00"]),
    ("stripe_events", ["replay", "--since", "2026-13-01"]),
    ("stripe_events", ["replay", "--since", ""]),
    ("stripe_events", ["replay", "--id", "evt\x00"]),
    ("idempotency_keys_purge", ["--older-than-hours", "1e20"]),
    ("idempotency_keys_purge", ["--older-than-hours", "99999999999999999999"]),
    ("idempotency_keys_purge", ["--older-than-hours", "-5"]),
    ("idempotency_keys_purge", ["--older-than-hours", "23"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("command", "args"), BAD_ARGUMENTS)
def test_bad_arguments_raise_one_command_error_line_and_change_nothing(command, args):
    with pytest.raises(CommandError) as failed:
        call_command(command, *args, stdout=StringIO(), stderr=StringIO())
    message = str(failed.value)
    assert message and "\n" not in message
    assert not Plan.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("command", "args"), [
    ("billing", ["run", "--as-of", "0001-01-01"]),
    ("billing", ["run", "--limit", "1e3"]),
    ("idempotency_keys_purge", ["--older-than-hours", "1e20"]),
])
def test_from_the_shell_bad_arguments_exit_1_without_a_traceback(command, args):
    root = Path(__file__).resolve().parents[2]
    database = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
                                         f"{database['NAME']}"}
    done = subprocess.run([sys.executable, str(root / "manage.py"), command, *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
