from django.contrib import admin
from django.urls import include, path

from billing_project.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("billing_project.api.router")),
]
