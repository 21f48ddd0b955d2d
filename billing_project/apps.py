from django.contrib.admin.apps import AdminConfig


class BillingAdminConfig(AdminConfig):
    """Replaces django.contrib.admin in INSTALLED_APPS so `admin.site` is the back office site."""

    default_site = "billing_project.admin_site.BillingAdminSite"

    def ready(self):
        super().ready()
        from core.db import clamped_timestamps_install

        clamped_timestamps_install()
        self._job_admin_only_where_jobs_are_stored()

    def _job_admin_only_where_jobs_are_stored(self) -> None:
        # Procrastinate's admin lists its PostgreSQL tables; the embedded default (SQLite) has none and
        # runs jobs in process (core/jobs.py), so there is nothing to list.
        from django.contrib import admin
        from django.db import connection
        from procrastinate.contrib.django import models as job_models

        if connection.vendor == "postgresql":
            return
        for model in (job_models.ProcrastinateJob, job_models.ProcrastinateEvent,
                      job_models.ProcrastinatePeriodicDefer, job_models.ProcrastinateWorker):
            if admin.site.is_registered(model):
                admin.site.unregister(model)
