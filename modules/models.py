"""Which modules are on, with their configuration, and the audit of every switch."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.audit import AuditRow


class ModuleState(models.Model):
    """One row per module someone switched or configured; a module without a row is on with defaults.

    Rows are created on first change (not at startup) so a new module needs no data migration.
    """

    # The module's declared code (ModuleDefinition.code); unique, locked by switches in primary-key order.
    code = models.SlugField(_("code"), max_length=64, unique=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    # Validated against the module's schema by `module_configure` only; the admin shows it read-only.
    config = models.JSONField(_("config"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("module state")
        verbose_name_plural = _("module states")
        ordering = ["code"]
        permissions = [("switch_modulestate", "Can enable and disable modules and change their configuration")]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^[a-z][a-z0-9_-]*$"), name="module_state_code_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({'enabled' if self.enabled else 'disabled'})"


class ModuleChangeKind(models.TextChoices):
    ENABLED = "enabled", _("Enabled")
    DISABLED = "disabled", _("Disabled")
    CONFIGURED = "configured", _("Configured")


class ModuleChange(AuditRow):
    """Append-only audit of module switches: who, when, why, what, and which request cascaded to it."""

    code = models.SlugField(_("code"), max_length=64)
    kind = models.CharField(_("kind"), max_length=16, choices=ModuleChangeKind.choices)
    # The module the operator asked to change; differs from `code` for a cascaded change.
    requested_code = models.SlugField(_("requested code"), max_length=64)
    # The configuration after a "configured" change, as validated.
    config = models.JSONField(_("config"), default=dict, blank=True)

    class Meta:
        verbose_name = _("module change")
        verbose_name_plural = _("module changes")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ModuleChangeKind.values), name="module_change_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.kind}"
