"""The report rollups by group: what `manage.py billing rollups-rebuild` rebuilds and `manage.py billing verify`
checks. Each group names its rebuild (returns rows written per table) and its mismatches (recomputed from
the sources); each lives in the module of the rows it sums."""

from collections.abc import Callable
from dataclasses import dataclass

from credits.rollup_rebuild import credit_day_mismatches, credit_days_rebuild
from payments.services.money_rollup_rebuild import money_rollup_mismatches, money_rollups_rebuild
from payments.services.mrr_rollup_rebuild import mrr_rollup_mismatches, mrr_rollups_rebuild
from subscriptions.count_rollup_rebuild import subscription_count_mismatches, subscription_counts_rebuild


@dataclass(frozen=True)
class RollupGroup:
    rebuild: Callable[[], dict[str, int]]
    mismatches: Callable[[], list[dict]]


ROLLUP_GROUPS: dict[str, RollupGroup] = {
    "mrr": RollupGroup(rebuild=mrr_rollups_rebuild, mismatches=mrr_rollup_mismatches),
    "money": RollupGroup(rebuild=money_rollups_rebuild, mismatches=money_rollup_mismatches),
    "credits": RollupGroup(rebuild=credit_days_rebuild, mismatches=credit_day_mismatches),
    "subscriptions": RollupGroup(rebuild=subscription_counts_rebuild, mismatches=subscription_count_mismatches),
}


def rollups_rebuild(*, groups: list[str] | None = None) -> dict[str, int]:
    """The named groups rebuilt (None: every group); rows written per table."""
    written: dict[str, int] = {}
    for name in groups or ROLLUP_GROUPS:
        written |= ROLLUP_GROUPS[name].rebuild()
    return written


def rollup_mismatches() -> list[dict]:
    return [row for group in ROLLUP_GROUPS.values() for row in group.mismatches()]
