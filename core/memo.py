"""Per-process memos of small, rarely changed configuration read on hot paths (which event types have
webhook endpoints, which credit-balance thresholds exist), kept true across processes by a version key in
Django's cache (Redis in production) that every change bumps.

A read asks the cache for the version (no database query), at most once a second per process, and
reloads only when it moved. A change bumps
the version twice: at once, so this process and the writing transaction itself see the change, and again
after its transaction commits, so a process that reloaded between the two (and read the old committed
rows) reloads once more. A load made inside a transaction that made a change itself (uncommitted) is used
but not kept: if that transaction rolls back, no memo remembers rows that never existed. That state is
per thread (each thread has its own connection) and ends when the thread is outside any transaction.

A memo is also reloaded once it is `max_age` seconds old, so a write that bypasses the model's hooks
(a raw SQL fix, a cascade) is seen within that time, and so is a bump lost while the cache was unreachable
(core.resilience then falls back to per-process memory: other processes' bumps are not seen meanwhile).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")
_MEMOS: list[VersionedMemo] = []


@dataclass(frozen=True)
class _Kept(Generic[T]):
    version: str
    # time.monotonic() of the last version check, and when the value must be loaded again regardless.
    checked_at: float
    expires_at: float
    value: T


class VersionedMemo(Generic[T]):
    def __init__(self, name: str, *, load: Callable[[], T], max_age: float = 60.0,
                 check_interval: float | Callable[[], float] = 1.0):
        self.version_key = f"memo-version:{name}"
        self.load = load
        self.max_age = max_age
        # Another process's change is seen within this many seconds (this process's own at once); a callable
        # is asked on each read, so a setting can say it (0: the version is asked on every read).
        self.check_interval = check_interval
        # Replaced whole, so a reader in another thread never sees half of it.
        self._memo: _Kept[T] | None = None
        # Per thread: whether its open transaction changed what the memo holds (its loads are not kept).
        self._local = threading.local()
        _MEMOS.append(self)

    def _version(self) -> str:
        version = cache.get(self.version_key)
        if version is None:
            # Never set, evicted or flushed: start a version every process then agrees on.
            cache.add(self.version_key, uuid.uuid4().hex, timeout=None)
            version = cache.get(self.version_key) or ""
        return version

    def get(self) -> T:
        """The memo; the version is asked of the cache at most every `check_interval` seconds (a hot path
        then pays no round trip at all, not even to the cache), and the memo is reloaded with `load` when
        the version moved or `max_age` passed."""
        memo, now = self._memo, time.monotonic()
        interval = self.check_interval() if callable(self.check_interval) else self.check_interval
        if memo is not None and now - memo.checked_at < interval and now < memo.expires_at:
            return memo.value
        version = self._version()
        if memo is not None and version and memo.version == version and now < memo.expires_at:
            self._memo = _Kept(version=version, checked_at=now, expires_at=memo.expires_at, value=memo.value)
            return memo.value
        value = self.load()
        if version and not self._changed_in_open_transaction():
            self._memo = _Kept(version=version, checked_at=now, expires_at=now + self.max_age, value=value)
        return value

    def changed(self) -> None:
        """Call in the transaction that changes what the memo holds (or after it, outside any)."""
        self._bump()
        self._local.changed = transaction.get_connection().in_atomic_block
        transaction.on_commit(self._bump)

    def _changed_in_open_transaction(self) -> bool:
        if not transaction.get_connection().in_atomic_block:
            self._local.changed = False  # committed or rolled back by now
        return getattr(self._local, "changed", False)

    def _bump(self) -> None:
        self._memo = None
        cache.set(self.version_key, uuid.uuid4().hex, timeout=None)

    def forget(self) -> None:
        """Drop this process's memo and this thread's note of an uncommitted change (each test starts
        clean: a test runs inside one transaction that is rolled back, never outside one)."""
        self._memo = None
        self._local.changed = False


def memos_forget() -> None:
    for memo in _MEMOS:
        memo.forget()


def memos_warm() -> None:
    """Load every memo, as a process that has served a while has (tests measuring a hot path's queries
    start from that steady state)."""
    for memo in _MEMOS:
        memo.get()
