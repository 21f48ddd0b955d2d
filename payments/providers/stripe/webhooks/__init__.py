"""Stripe webhooks in: a thin view (views.py), the inbox service that verifies, stores and processes
events exactly once (services.py), and one handler per event type (handlers.py)."""
