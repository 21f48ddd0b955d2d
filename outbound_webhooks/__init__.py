"""Signed outbound webhooks to the merchant's own systems (docs/webhooks-outbound.md).

Sits just above `notifications` (it emails staff when an endpoint is disabled) and below every app that
emits events, which call `outbound_webhooks.services.webhook_event_emit(_many)` inside their own
transaction. It knows no domain model: each emitter hands it the object's type, id and a JSON snapshot.
"""
