from django.contrib.admin.apps import AdminConfig


class BillingAdminConfig(AdminConfig):
    """Replaces django.contrib.admin in INSTALLED_APPS so `admin.site` is the back office site."""

    default_site = "billing_project.admin_site.BillingAdminSite"
