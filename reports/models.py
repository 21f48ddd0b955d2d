from django.db import models
from django.utils.translation import gettext_lazy as _


class ReportAccess(models.Model):
    """No table: the holder of the `reports.view_reports` permission.

    Reports read every app's ledgers and invoices, so their permission belongs to no model of those apps;
    Django ties a permission to a content type, and an unmanaged model without default permissions gives
    it one without creating a table.
    """

    class Meta:
        verbose_name = _("report access")
        verbose_name_plural = _("report accesses")
        managed = False
        default_permissions = ()
        permissions = [("view_reports", "Can view finance reports")]

    def __str__(self) -> str:
        return "finance reports"
