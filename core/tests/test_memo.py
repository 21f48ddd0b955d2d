"""core.memo: a per-process memo reloaded only when another process (here: another memo of the same name)
bumps the shared version, never keeping what an uncommitted change showed it."""

import pytest
from django.db import transaction

from core.memo import VersionedMemo


class Source:
    def __init__(self):
        self.value, self.loads = 1, 0

    def load(self):
        self.loads += 1
        return self.value


@pytest.fixture
def two_processes():
    source = Source()
    return source, *(VersionedMemo("test.memo", load=source.load, check_interval=0) for _ in range(2))


@pytest.mark.django_db(transaction=True)
def test_a_memo_loads_once_and_reloads_after_another_process_changes_it(two_processes):
    source, here, there = two_processes
    assert (here.get(), here.get(), source.loads) == (1, 1, 1)
    source.value = 2
    there.changed()  # outside a transaction: committed at once
    assert (here.get(), here.get(), source.loads) == (2, 2, 2)


@pytest.mark.django_db(transaction=True)
def test_the_version_is_bumped_again_when_the_change_commits(two_processes):
    source, here, there = two_processes
    here.get()
    with transaction.atomic():
        there.changed()
        here.get()  # another process reloads before the commit: it still reads the old rows
        source.value = 2  # ... which the commit then changes
    assert here.get() == 2


@pytest.mark.django_db
def test_a_load_inside_the_changing_transaction_is_used_but_not_kept(two_processes):
    source, here, _ = two_processes
    here.get()
    with pytest.raises(RuntimeError), transaction.atomic():
        here.changed()
        source.value = 2
        assert here.get() == 2
        raise RuntimeError
    source.value = 1  # rolled back
    assert here.get() == 1 and here.get() == 1


@pytest.mark.django_db
def test_a_memo_older_than_max_age_is_reloaded(two_processes):
    source = Source()
    memo = VersionedMemo("test.memo.aged", load=source.load, max_age=0)
    memo.get()
    memo.get()
    assert source.loads == 2


@pytest.mark.django_db
def test_within_the_check_interval_not_even_the_cache_is_asked(monkeypatch):
    from django.core.cache import cache

    source = Source()
    memo = VersionedMemo("test.memo.quiet", load=source.load, check_interval=3600)
    memo.get()
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: pytest.fail("the cache was asked"))
    assert memo.get() == 1 and source.loads == 1
    memo.changed()  # this process's own change is seen at once all the same
