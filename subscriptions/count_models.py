"""The subscriptions-at-a-date report's rollup: how many subscriptions entered or left each (status, plan),
as +1/-1 deltas, so the count at an instant is the sum of the deltas up to it. Written with the audit rows
(`SubscriptionEvent`) that move them (subscriptions.count_rollups), checked by `manage.py billing verify`,
rebuilt by `manage.py billing rollups-rebuild` (subscriptions.count_rollup_rebuild)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SubscriptionCountChange(models.Model):
    """The deltas of one exact instant (an audit row's `created_at`; a billing-run batch writes its rows at
    one instant, so a batch is a handful of rows): what a report at an instant inside a month sums from the
    month's start to the instant."""

    at = models.DateTimeField(_("at"))
    status = models.CharField(_("status"), max_length=16)
    plan = models.ForeignKey("subscriptions.Plan", verbose_name=_("plan"), on_delete=models.PROTECT,
                             related_name="+", db_index=False)
    # The subscription id % 16: concurrent writers of different subscriptions rarely share a row.
    shard = models.SmallIntegerField(_("shard"))
    # Subscriptions that entered (status, plan) minus those that left it at `at`.
    delta = models.IntegerField(_("delta"))

    class Meta:
        verbose_name = _("subscription count change")
        verbose_name_plural = _("subscription count changes")
        constraints = [models.UniqueConstraint(fields=["at", "status", "plan", "shard"],
                                               name="subscription_count_change_once")]

    def __str__(self) -> str:
        return f"{self.delta:+d} {self.status} plan {self.plan_id} at {self.at:%Y-%m-%d %H:%M:%S}"


class SubscriptionCountMonth(models.Model):
    """The sum of a UTC month's `SubscriptionCountChange` deltas: what a report sums for the months before
    its instant's month."""

    # The month's first instant (UTC).
    month = models.DateTimeField(_("month"))
    status = models.CharField(_("status"), max_length=16)
    plan = models.ForeignKey("subscriptions.Plan", verbose_name=_("plan"), on_delete=models.PROTECT,
                             related_name="+", db_index=False)
    # As SubscriptionCountChange.shard.
    shard = models.SmallIntegerField(_("shard"))
    delta = models.IntegerField(_("delta"))

    class Meta:
        verbose_name = _("subscription count month")
        verbose_name_plural = _("subscription count months")
        constraints = [models.UniqueConstraint(fields=["month", "status", "plan", "shard"],
                                               name="subscription_count_month_once")]

    def __str__(self) -> str:
        return f"{self.delta:+d} {self.status} plan {self.plan_id} in {self.month:%Y-%m}"
