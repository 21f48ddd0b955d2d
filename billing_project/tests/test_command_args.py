"""Every bad argument of every management command ends it with exit status 1 and one line."""

import importlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.command_args import parse_as_of
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


# --------------------------------------------------------------------------- one clock for every command

def _clock_spy(monkeypatch, module, name: str, keyword: str) -> list:
    """Record the instant a command hands to its service, then let the real service run."""
    seen, real = [], getattr(module, name)

    def recording(*args, **kwargs):
        seen.append(kwargs[keyword])
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, recording)
    return seen


@pytest.mark.django_db
@pytest.mark.parametrize(("command", "args", "module_name", "service", "keyword"), [
    ("billing", ["run", "--no-progress", "--as-of"], "payments.management.commands.billing", "billing_run", "as_of"),
    ("seed", ["--as-of"], "payments.management.commands.seed", "seed_run", "as_of"),
    ("stripe_events", ["replay", "--since"], "payments.providers.stripe.management.commands.stripe_events",
     "stripe_event_replay", "since"),
])
@pytest.mark.parametrize(("given", "instant"), [
    ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),                       # a bare date is midnight UTC
    ("2026-03-01T00:00:00", datetime(2026, 3, 1, tzinfo=UTC)),              # no offset is UTC
    ("2026-03-01T09:30:00+09:30", datetime(2026, 3, 1, tzinfo=UTC)),        # an offset is honoured
])
def test_every_command_reads_the_clock_the_same_way(monkeypatch, settings, command, args, module_name, service,
                                                    keyword, given, instant):
    settings.DEBUG = True  # seed's local default staff password
    seen = _clock_spy(monkeypatch, importlib.import_module(module_name), service, keyword)

    call_command(command, *args, given, stdout=StringIO(), stderr=StringIO())

    assert seen == [instant]


def test_as_of_not_given_leaves_the_default_to_the_command():
    assert parse_as_of(None) is None
    assert parse_as_of(" 2026-03-01 ") == datetime(2026, 3, 1, tzinfo=UTC)
