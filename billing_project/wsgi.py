"""WSGI entry point for HTTP-only workers (gunicorn); WebSockets are served by asgi.py under daphne."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")

application = get_wsgi_application()

from billing_project.warmup import application_warm_up  # noqa: E402  (Django is set up by now)

application_warm_up()
