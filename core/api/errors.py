"""One error shape for every 4xx (and 5xx) answer of the API:

    {"error": {"type": ..., "code": ..., "message": ..., "fields": {...}, "details": {...}}}

`type` is the family a client switches on, `code` the precise reason, `fields` DRF's per-field errors
(empty unless the input was invalid), `details` the domain error's extra data (the balance on a 402).
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, OperationalError
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import BillingError


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "request_too_large"

    def __init__(self):
        super().__init__(_("The request body is larger than %(limit)s bytes (DATA_UPLOAD_MAX_MEMORY_SIZE).")
                         % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})


_TYPES: list[tuple[type, str]] = [
    (RequestTooLarge, "invalid_request"),
    (exceptions.ValidationError, "invalid_request"),
    (exceptions.ParseError, "invalid_request"),
    (exceptions.UnsupportedMediaType, "invalid_request"),
    (exceptions.NotAuthenticated, "authentication_error"),
    (exceptions.AuthenticationFailed, "authentication_error"),
    (exceptions.PermissionDenied, "permission_error"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "invalid_request"),
    (exceptions.NotAcceptable, "invalid_request"),
    (exceptions.Throttled, "rate_limit_error"),
]


def error_body(*, type_: str, code: str, message: str, fields: dict | None = None,
               details: dict | None = None) -> dict:
    """The error document, for doors that answer before DRF runs (core.middleware)."""
    body = {"type": type_, "code": code, "message": message, "fields": fields or {}}
    if details:
        body["details"] = details
    return {"error": body}


def _error(*, status: int, type_: str, code: str, message: str, fields: dict | None = None,
           details: dict | None = None, headers=None) -> Response:
    return Response(error_body(type_=type_, code=code, message=message, fields=fields, details=details),
                    status=status, headers=headers)


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


# PostgreSQL SQLSTATEs a concurrent writer can cause that no service lock can rule out: a unique row
# another request inserted first, a deadlock, a serialization failure, a lock wait cut by lock_timeout.
_CONFLICT_SQLSTATES = {"23505", "40P01", "40001", "55P03"}


def _database_conflict(exc) -> bool:
    if not isinstance(exc, IntegrityError | OperationalError):
        return False
    return getattr(exc.__cause__, "sqlstate", None) in _CONFLICT_SQLSTATES


# Values that passed every field bound but whose total does not fit its column (a balance or an invoice
# total summed past a bigint, a date moved past year 9999): bad input, and its transaction rolled back.
_OUT_OF_RANGE_SQLSTATES = {"22003", "22008"}


def _out_of_range(exc) -> bool:
    return isinstance(exc, DataError) and getattr(exc.__cause__, "sqlstate", None) in _OUT_OF_RANGE_SQLSTATES


def api_exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: domain errors, DRF errors and Django's 404/403/validation, one shape."""
    if _database_conflict(exc):
        # The request lost a race with another one; retrying it is safe (its transaction rolled back).
        return _error(status=409, type_="billing_error", code="conflict",
                      message=_("Another request changed the same data at the same time; retry."))
    if _out_of_range(exc):
        return _error(status=400, type_="invalid_request", code="out_of_range",
                      message=_("A number or date in this request, or a total it adds up to, is too large to store."))
    if isinstance(exc, BillingError):
        details = {k: v for k, v in exc.extra.items() if k != "fields"}
        return _error(status=exc.http_status, type_="billing_error", code=exc.code, message=exc.message,
                      fields=exc.extra.get("fields"), details=details)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _error(status=400, type_="invalid_request", code="invalid", message=_first_message(fields),
                      fields=fields)
    if isinstance(exc, RequestDataTooBig):  # Django's own limit, met while reading the body
        exc = RequestTooLarge()
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: let Django answer 500 and log it
    type_ = next((name for klass, name in _TYPES if isinstance(exc, klass)), "api_error")
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = serializers.as_serializer_error(exceptions.ValidationError(detail))
        return _error(status=response.status_code, type_=type_, code="invalid",
                      message=_("Invalid input: %(reason)s") % {"reason": _first_message(fields)}, fields=fields,
                      headers=response.headers)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else "error"
    details = {"retry_after": int(exc.wait)} if isinstance(exc, exceptions.Throttled) and exc.wait else None
    return _error(status=response.status_code, type_=type_, code=code, message=_first_message(exc.detail),
                  details=details, headers=response.headers)


# ------------------------------------------------------------------------------ schema components


class ApiErrorBodySerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=["invalid_request", "authentication_error", "permission_error", "not_found", "rate_limit_error",
                 "billing_error", "api_error"],
        help_text="Family of the error: what a client switches on.")
    code = serializers.CharField(help_text="Precise reason, e.g. `invalid`, `insufficient_credits`, "
                                           "`idempotency_conflict`, `plan_feature_missing`, `throttled`.")
    message = serializers.CharField(help_text="A sentence for humans.")
    fields = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Per-field errors (DRF's shape: field -> list of messages, nested for objects and lists); "
                  "empty unless the input was invalid.")
    details = serializers.DictField(
        child=serializers.JSONField(), required=False,
        help_text="Extra data of a domain error, e.g. `balance` and `required` on a 402.")


class ApiErrorSerializer(serializers.Serializer):
    error = ApiErrorBodySerializer()


_EXAMPLES = {
    400: ("Invalid input", {"type": "invalid_request", "code": "invalid", "message": "Invalid input: This field "
                            "is required.", "fields": {"amount": ["This field is required."]}}),
    401: ("Not signed in", {"type": "authentication_error", "code": "not_authenticated",
                            "message": "Authentication credentials were not provided.", "fields": {}}),
    402: ("Not enough credits", {"type": "billing_error", "code": "insufficient_credits",
                                 "message": "500 credits needed but only 120 available.", "fields": {},
                                 "details": {"balance": 120, "required": 500}}),
    403: ("Plan without the feature", {"type": "permission_error", "code": "plan_feature_missing",
                                       "message": "Your plan (Free) does not include the api_access feature.",
                                       "fields": {}}),
    404: ("Not yours or not there", {"type": "not_found", "code": "not_found",
                                     "message": "No such object.", "fields": {}}),
    415: ("Body not JSON", {"type": "invalid_request", "code": "unsupported_media_type",
                           "message": "Unsupported media type \"text/plain\" in request.", "fields": {}}),
    413: ("Body too large", {"type": "invalid_request", "code": "request_too_large",
                             "message": "The request body is larger than 5242880 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE).",
                             "fields": {}}),
    409: ("Idempotency-Key reused", {"type": "billing_error", "code": "idempotency_conflict",
                                     "message": "This Idempotency-Key was already used for a different request; "
                                                "send a new key.", "fields": {},
                                     "details": {"idempotency_key": "k-1"}}),
    429: ("Plan limit reached", {"type": "rate_limit_error", "code": "throttled",
                                 "message": "Request was throttled. Expected available in 42 seconds.",
                                 "fields": {}, "details": {"retry_after": 42}}),
    502: ("Payment provider failed", {"type": "billing_error", "code": "payment_provider_error",
                                      "message": "Stripe could not be reached; try again.", "fields": {}}),
    503: ("Payment provider down", {"type": "billing_error", "code": "payment_provider_unavailable",
                                    "message": "Card refunds need the Stripe gateway, which is not configured.",
                                    "fields": {}}),
}

_DESCRIPTIONS = {
    400: "Invalid input or an operation the object does not allow; `fields` holds per-field errors.",
    401: "Missing or invalid credentials (`Authorization: Token <key>`).",
    402: "Not enough prepaid credits; `details.balance` is what is available.",
    403: "Signed in, but not allowed: a staff-only action, a Django permission the staff account lacks, or "
         "the plan lacks the feature.",
    404: "No such object, or it belongs to another customer.",
    413: "The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    409: "Idempotency-Key reused with another request or still in progress, an illegal state change, or a "
         "conflict with a concurrent request (`conflict`: retry).",
    415: "The body is in a media type the API does not read (send `application/json`).",
    429: "A plan rate limit or the sign-in limit was reached; see `Retry-After`.",
    502: "The payment provider failed or could not be reached; retrying with the same Idempotency-Key "
         "never charges or refunds twice.",
    503: "The payment provider is not available, or every database connection is busy (`database_busy`: retry "
         "after `Retry-After`).",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """extend_schema `responses` entries for these statuses, all in the one error shape."""
    statuses = statuses or (400, 401, 403, 404, 429)
    return {
        status: OpenApiResponse(
            response=ApiErrorSerializer, description=_DESCRIPTIONS[status],
            examples=[OpenApiExample(_EXAMPLES[status][0], value={"error": _EXAMPLES[status][1]},
                                     response_only=True, status_codes=[str(status)])],
        )
        for status in statuses
    }


READ_ERRORS = (401, 403, 429)
DETAIL_ERRORS = (401, 403, 404, 429)
WRITE_ERRORS = (400, 401, 403, 409, 429)
DETAIL_WRITE_ERRORS = (400, 401, 403, 404, 409, 429)
