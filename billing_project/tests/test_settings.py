import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_deploy_check_is_clean_with_production_values():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env={
        "DEBUG": "false", "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
        "ALLOWED_HOSTS": "billing.example.com",
    })

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_embedded_default_needs_no_environment():
    result = _manage("shell", "-c", "from django.conf import settings as s; "
                     "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
                     "s.CACHES['default']['BACKEND'], bool(s.STRIPE_SECRET_KEY))", env={})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-4:] == [
        "django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer",
        "django.core.cache.backends.locmem.LocMemCache", "False",
    ]


def test_redis_url_switches_channel_layer_and_cache():
    result = _manage("shell", "-c", "from django.conf import settings as s; "
                     "print(s.CHANNEL_LAYERS['default']['BACKEND'], s.CACHES['default']['BACKEND'])",
                     env={"REDIS_URL": "redis://127.0.0.1:6379/5"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == [
        "modules.live_layer.PipelinedPubSubChannelLayer", "core.resilience.ResilientRedisCache",
    ]


def _database_settings(env: dict[str, str]) -> list[str]:
    result = _manage("shell", "-c", "from django.conf import settings as s; d = s.DATABASES['default']; "
                     "print(d['CONN_MAX_AGE'], d.get('OPTIONS', {}).get('pool'))", env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_postgresql_connections_come_from_a_bounded_pool_and_sqlite_never_pools():
    postgres = "postgres://postgres@127.0.0.1:5432/billing"

    assert _database_settings({"DATABASE_URL": postgres}) == "0 {'min_size': 1, 'max_size': 10, 'timeout': 30.0}"
    assert _database_settings({"DATABASE_URL": postgres, "DATABASE_POOL_MAX_SIZE": "4",
                               "DATABASE_POOL_MIN_SIZE": "9", "DATABASE_POOL_TIMEOUT": "5"}) == \
        "0 {'min_size': 4, 'max_size': 4, 'timeout': 5.0}"
    assert _database_settings({"DATABASE_URL": postgres, "DATABASE_POOL_MAX_SIZE": "0"}) == "60 None"
    assert _database_settings({}) == "60 None"


def _email_settings(env: dict[str, str]) -> dict:
    result = _manage("shell", "-c", "import json; from django.conf import settings as s; print('EMAIL ' + json.dumps("
                     "[s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.ANYMAIL]))", env=env)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("EMAIL ")] or [result.stderr]
    return json.loads(line.removeprefix("EMAIL "))


def test_email_goes_to_the_console_by_default_and_to_smtp_or_anymail_through_settings():
    assert _email_settings({})[0] == "django.core.mail.backends.console.EmailBackend"
    assert _email_settings({"EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587"})[:4] == [
        "django.core.mail.backends.smtp.EmailBackend", "smtp.example.com", 587, True]
    anymail = _email_settings({"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
                               "ANYMAIL": '{"POSTMARK_SERVER_TOKEN": "t"}'})
    assert (anymail[0], anymail[4]) == ("anymail.backends.postmark.EmailBackend", {"POSTMARK_SERVER_TOKEN": "t"})
