"""Domain errors raised by services; each door (API, admin, commands) maps them to its own answer.

`http_status` is what the API answers, so the error contract lives in one place.
"""


class BillingError(Exception):
    http_status = 400
    code = "billing_error"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra or {}


class IllegalTransition(BillingError):
    http_status = 409
    code = "illegal_transition"


class InsufficientCredits(BillingError):
    http_status = 402
    code = "insufficient_credits"


class SpendCapReached(BillingError):
    """Usage that would pass a hard cap (usage.UsageThreshold): refused whole, nothing stored or billed."""

    http_status = 402
    code = "spend_cap_reached"


class IdempotencyConflict(BillingError):
    http_status = 409
    code = "idempotency_conflict"


class InvalidOperation(BillingError):
    http_status = 400
    code = "invalid_operation"


class PaymentProviderUnavailable(BillingError):
    http_status = 503
    code = "payment_provider_unavailable"


class CardDeclined(BillingError):
    """The customer's bank or card network refused the charge; another card or a manual payment is needed."""

    http_status = 402
    code = "card_declined"


class PaymentProviderError(BillingError):
    """The payment provider failed or answered something we cannot use; the attempt may be retried."""

    http_status = 502
    code = "payment_provider_error"


class WebhookRejected(BillingError):
    """A webhook delivery whose signature, timestamp or body cannot be trusted; nothing of it is stored."""

    http_status = 400
    code = "webhook_rejected"
