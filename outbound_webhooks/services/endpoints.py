"""Staff's endpoint registrations: URL, secret, event types, enabled."""

import secrets

from django.db import transaction
from django.utils.translation import gettext as _

from core.exceptions import InvalidOperation
from outbound_webhooks.models import EventType, WebhookEndpoint
from outbound_webhooks.network import UnsafeWebhookUrl, webhook_url_check_syntax

# Generated secrets carry a prefix so a leaked one is recognisable in logs and secret scanners.
SECRET_PREFIX = "whsec_"


def _field_error(field: str, message: str, code: str) -> InvalidOperation:
    return InvalidOperation(message, code=code, extra={"fields": {field: [message]}})


def _url_checked(url: str) -> str:
    # Only what needs no DNS here (a name may resolve differently later): each delivery resolves and
    # checks every address again before it connects (outbound_webhooks.network).
    try:
        webhook_url_check_syntax(url=url)
    except UnsafeWebhookUrl as exc:
        raise _field_error("url", str(exc), "webhook_url_not_allowed") from exc
    return url


def _event_types_checked(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        raise _field_error("event_types", _("Unknown event types: %(types)s.") % {"types": ", ".join(unknown)},
                           "webhook_event_type_unknown")
    if not event_types:
        raise _field_error("event_types", _("Choose at least one event type."), "webhook_event_types_empty")
    return sorted(set(event_types))


def webhook_endpoint_create(*, url: str, event_types: list[str], description: str = "", secret: str = "",
                            enabled: bool = True) -> WebhookEndpoint:
    """Register an endpoint; with no `secret` given, a random one is generated (shown to staff to copy)."""
    return WebhookEndpoint.objects.create(
        url=_url_checked(url), event_types=_event_types_checked(event_types), description=description,
        secret=secret or SECRET_PREFIX + secrets.token_urlsafe(32), enabled=enabled)


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, url: str | None = None, event_types: list[str] | None = None,
                            description: str | None = None, secret: str | None = None,
                            enabled: bool | None = None) -> WebhookEndpoint:
    """Change what staff named; enabling an endpoint the system disabled clears its failure record."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if url is not None:
            endpoint.url = _url_checked(url)
        if event_types is not None:
            endpoint.event_types = _event_types_checked(event_types)
        if description is not None:
            endpoint.description = description
        if secret:
            endpoint.secret = secret
        if enabled is not None:
            if enabled and not endpoint.enabled:
                endpoint.failing_since, endpoint.disabled_at, endpoint.disabled_reason = None, None, ""
            endpoint.enabled = enabled
        endpoint.save()
    return endpoint
