"""The credits report's rollup: the credit ledger summed per UTC day, so a year's report reads a few thousand
rows instead of every ledger row. Written in the transaction of every ledger row (credits.rollups), checked
by `manage.py billing verify`, rebuilt by `manage.py billing rollups-rebuild` (credits.rollup_rebuild)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class CreditLedgerDay(models.Model):
    """The signed sum of the ledger rows of one UTC day, per customer currency, per report column (the
    columns of reports.selectors.credits: a grant row of a purchased grant is `purchased`, any other grant row
    `granted`, then one column per other kind), so their sum moves the outstanding credits exactly."""

    # The UTC midnight starting the day.
    day = models.DateTimeField(_("day"))
    # The customer's currency when the row was written (customers with credits keep theirs): the report's
    # currency filter keeps the customers billed in a currency.
    currency = models.CharField(_("currency"), max_length=3)
    # Spreads one day's writers over several rows so concurrent debits of different customers do not wait
    # on one row: debits (the hot path) use customer id % 64, every other writer 64 + customer id % 8, so a
    # billing-run batch holding its rows to COMMIT never makes a debit wait. Readers sum the shards.
    shard = models.SmallIntegerField(_("shard"))
    # Credits are units, not money; signed like the ledger (used and expired are negative).
    granted = models.BigIntegerField(_("granted"), default=0)
    purchased = models.BigIntegerField(_("purchased"), default=0)
    used = models.BigIntegerField(_("used"), default=0)
    expired = models.BigIntegerField(_("expired"), default=0)
    refunded = models.BigIntegerField(_("refunded"), default=0)
    adjusted = models.BigIntegerField(_("adjusted"), default=0)

    class Meta:
        verbose_name = _("credit ledger day")
        verbose_name_plural = _("credit ledger days")
        constraints = [models.UniqueConstraint(fields=["day", "currency", "shard"], name="credit_ledger_day_once")]

    def __str__(self) -> str:
        return f"credits {self.currency} {self.day:%Y-%m-%d} shard {self.shard}"
