"""Test-wide guards: PostgreSQL only, and no network but loopback."""

import ipaddress
import socket

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX socket path
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded(real):
    def connect(self, address):
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may only reach loopback, not {address!r}")
        return real(self, address)

    return connect


socket.socket.connect = _guarded(_real_connect)
socket.socket.connect_ex = _guarded(_real_connect_ex)


@pytest.fixture(scope="session", autouse=True)
def _require_postgresql(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.exit("The tests run on PostgreSQL: set DATABASE_URL (make test does).", returncode=2)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness buys nothing in tests and costs ~0.3 s per factory user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and cached plan limits live in the cache: each test starts with none, so no
    test is throttled by another's requests (throttling is tested on purpose where it matters)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_jobs_left_behind(request, django_db_blocker):
    """Procrastinate's tables are not Django models it manages, so the flush after a test that commits for
    real leaves its jobs behind: they are emptied too, and every test starts with an empty queue."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction", False):
        return
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE procrastinate_jobs, procrastinate_periodic_defers, procrastinate_workers CASCADE")


@pytest.fixture(autouse=True)
def _fresh_module_state(settings):
    """Each process remembers which modules are enabled for a moment (modules.selectors); a test's
    rolled-back switch must not leak into the next test through that memo. Within a test the memo lives as
    long as the test (a switch in this process forgets it at once anyway), so a query count a test pins does
    not depend on whether a slow machine took longer than MODULES_STATE_CACHE_SECONDS between requests."""
    from modules.selectors import modules_state_forget

    settings.MODULES_STATE_CACHE_SECONDS = 3600
    modules_state_forget()
    yield
    modules_state_forget()


@pytest.fixture(autouse=True)
def _fresh_memos(request, _fresh_cache, _fresh_module_state):
    """Per-process memos of configuration (core.memo) note a change made inside an open transaction; a
    test's transaction is rolled back, so that note is dropped here rather than carried to the next test.
    A database test then starts with them loaded, as a process that has served a while has them: the
    query counts tests pin for hot paths (a credit debit, an emit) are that steady state's."""
    from core.memo import memos_forget, memos_warm

    memos_forget()
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
        from modules.selectors import modules_enabled_codes

        modules_enabled_codes()
        memos_warm()
    yield
    memos_forget()


@pytest.fixture(autouse=True)
def _commands_in_language_code(monkeypatch):
    """Commands write in the operator's locale (core.commands): every test starts from a neutral one, so
    a developer whose shell is in Arabic runs the suite as CI does. Tests of the rule set their own."""
    from core.commands import LANGUAGE_VARIABLES

    for name in LANGUAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.fixture(autouse=True)
def _language_code_after_each_test():
    """A request that went through LocaleMiddleware leaves its language active in the thread (Django does not
    reset it): the next test starts from LANGUAGE_CODE, whatever language the last one's requests asked for."""
    yield
    from django.utils import translation

    translation.deactivate()
