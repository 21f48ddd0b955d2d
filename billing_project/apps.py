from django.contrib.admin.apps import AdminConfig


class BillingAdminConfig(AdminConfig):
    """Replaces django.contrib.admin in INSTALLED_APPS so `admin.site` is the back office site."""

    default_site = "billing_project.admin_site.BillingAdminSite"

    def ready(self):
        super().ready()
        from core.db import clamped_timestamps_install

        clamped_timestamps_install()
