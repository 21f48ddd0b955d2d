"""Real threads for the concurrency tests of every app: they race against PostgreSQL's row locks and
constraints, which is what those tests pin."""

import threading
from collections.abc import Callable


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
