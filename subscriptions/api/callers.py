"""Who calls the API, remembered in each process: token holders and their plan limits.

Every API request needs the token's holder and the caller's plan limits. Both are kept in the shared cache
(Redis) for API_TOKEN_CACHE_SECONDS / API_CLIENT_CACHE_SECONDS, which cost two round trips per request: a
fifth of a credit debit's CPU over HTTP. Each process now also keeps what it read, in one `VersionedMemo`
whose version every change bumps (a token saved or deleted, a user saved or deleted, a plan or language
change made through the API: the same events that forget the shared entries), so a steady request makes no
round trip at all:
- this process sees its own changes at once; another process's within API_CALLERS_CHECK_SECONDS (1 s), the
  interval at which a process asks the cache for the version. 0 asks on every lookup: two small reads
  of the version per request (the token's holder, the plan limits), and every revocation is seen at once everywhere;
- an entry is never used past the deadline of the shared entry it came from (stored with it), so writes
  that bypass the models are still seen within API_TOKEN_CACHE_SECONDS / API_CLIENT_CACHE_SECONDS;
- a process remembers at most MAX_ENTRIES callers (then starts over), so unknown keys cannot grow it.
"""

import time
from collections.abc import Hashable
from typing import Any

from django.conf import settings

from core.memo import VersionedMemo

MAX_ENTRIES = 10_000


def _check_seconds() -> float:
    return settings.API_CALLERS_CHECK_SECONDS


# One version for both kinds of entry: a change asks every process to forget all of them, which is rare
# beside requests, and a process checks one key instead of two.
_CALLERS: VersionedMemo[dict] = VersionedMemo("api-callers", load=dict, check_interval=_check_seconds)


def caller_remembered(key: Hashable) -> Any | None:
    """What this process remembers under `key`, unless its deadline (wall clock) has passed."""
    entry = _CALLERS.get().get(key)
    if entry is None or entry[0] <= time.time():
        return None
    return entry[1]


def caller_remember(key: Hashable, value: Any, *, until: float) -> None:
    """Remember `value` until `until` (wall clock: the deadline of the shared entry it was read from)."""
    entries = _CALLERS.get()
    if len(entries) >= MAX_ENTRIES:
        entries.clear()
    entries[key] = (until, value)


def callers_changed() -> None:
    """A token, a user or a caller's plan changed: every process forgets what it remembers (this one at
    once and again after the commit, the others at their next version check)."""
    _CALLERS.changed()
