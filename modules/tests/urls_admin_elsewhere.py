"""A URLconf with the admin mounted somewhere else, for the doors middleware's tests."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("backoffice/", admin.site.urls)]
