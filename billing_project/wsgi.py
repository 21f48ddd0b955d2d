"""WSGI entry point for HTTP-only workers (gunicorn); WebSockets are served by asgi.py under daphne."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")

application = get_wsgi_application()
