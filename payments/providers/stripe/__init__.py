"""The Stripe rail: everything Stripe lives here and only here imports the SDK.

gateway.py (the client and its payload dataclasses), sync.py (applying what Stripe says to our rows),
services.py (Stripe customers and saved cards), webhooks/ (verification, inbox, handlers, the endpoint),
admin.py (the webhook inbox in the back office, over models.py's `StripeEvent`, a proxy of the shared
inbox), health.py (the /healthz section), provider.py (`StripeProvider`, the contract, delegating to the
gateway), management/commands/stripe_events.py. The package is a Django app of its own (apps.py) so
Django finds its admin, proxy model and command. Nothing here is imported by name from
billing, collection, dunning, refunds or checkout: they go through payments.providers.
"""
