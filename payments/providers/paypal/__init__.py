"""The PayPal rail: client.py (the only module importing paypal-server-sdk), payloads.py (PayPal's objects
as dataclasses), webhooks/ (verification). docs/paypal.md describes it."""
