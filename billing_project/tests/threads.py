"""Real threads for the concurrency tests of every app: they race against PostgreSQL's row locks and
constraints, which is what those tests pin."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from django.db import connections


def run_threads(targets: list[Callable[[], object]], *, join_timeout: float | None = None) -> list[threading.Thread]:
    """Start one thread per target, then wait for each (at most `join_timeout` seconds apiece, so a
    deadlock fails the test instead of hanging it). The threads are returned so a test can check that
    none is still running."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=join_timeout)
    return threads


@dataclass
class Race:
    # Return values in the order the threads finished, and whatever they raised.
    results: list = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def race(targets: list[Callable[[], object]], *, join_timeout: float | None = None) -> Race:
    """Run the targets in threads released together by one barrier, so they really contend. A thread
    cannot fail the test itself: its result or exception is collected for the test to assert on, and
    its database connections are closed so the test database can be dropped."""
    barrier = threading.Barrier(len(targets))
    outcome = Race()

    def contender(target: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            outcome.results.append(target())
        except Exception as exc:
            outcome.errors.append(exc)
        finally:
            connections.close_all()

    run_threads([partial(contender, target) for target in targets], join_timeout=join_timeout)
    return outcome
