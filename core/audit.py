"""Who did something: a staff or customer user, or a named system process (billing run, webhook).

Every ledger and audit row records both, because users get deleted but history must still say who.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Actor:
    user: "settings.AUTH_USER_MODEL | None" = None
    label: str = "system"

    @classmethod
    def of_user(cls, user) -> "Actor":
        return cls(user=user, label=user.get_username())

    @classmethod
    def system(cls, label: str) -> "Actor":
        return cls(user=None, label=f"system:{label}")


SYSTEM = Actor.system("app")


class AuditRow(models.Model):
    """Fields shared by every append-only row: when, who and why."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    # Kept nullable with SET_NULL so deleting a user never deletes history; actor_label still says who.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"),
            null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(_("actor label"), max_length=150, default="system")
    reason = models.CharField(_("reason"), max_length=500, blank=True)

    class Meta:
        abstract = True

    def stamp(self, actor: Actor) -> None:
        self.actor = actor.user if actor.user is not None and actor.user.pk else None
        self.actor_label = actor.label
