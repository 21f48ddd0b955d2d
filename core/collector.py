"""Python's cyclic garbage collector around batch work.

A billing batch builds a few hundred thousand small objects (claimed rows, drafts, COPY tuples) that all
live until the batch commits. The cyclic collector runs whenever allocations outnumber frees by 700, and
every tenth and hundredth run it walks every tracked object still alive: about 150 collections per
30,000 renewals, a quarter to a third of the run's own CPU (bench/billing_run.py). The batch's objects
form no reference cycles that matter: reference counting frees them when the batch returns, so the
collector can wait until then."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_collection_deferred() -> Iterator[None]:
    """Run the block with the cyclic collector off, and restore it as it was (a nested block, or a caller
    that turned it off itself, keeps it off). Whatever cycles the block left are collected by the next
    ordinary collection after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
