"""drf-spectacular customisation: the schema says what the API really answers.

`ApiAutoSchema` (DEFAULT_SCHEMA_CLASS) documents, on every /api/v1/ operation, the error statuses the
shared machinery can produce whatever the view does (authentication, CSRF and permissions, plan limits,
filters and bodies, cursors, path ids, Idempotency-Key), and only calls a response a list when it is
one. The post-processing hook documents the headers every API response carries.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_basic_type, is_list_serializer
from rest_framework.mixins import ListModelMixin

from core.api.errors import error_responses

# Query parameters that never answer 400: DRF ignores an unknown ordering or a bad page size, and a bad
# cursor is a 404 (documented separately).
_LENIENT_QUERY_PARAMETERS = frozenset({"ordering", "page_size", "cursor"})


class ApiAutoSchema(AutoSchema):
    def _is_list_view(self, serializer=None) -> bool:
        """A response is a list when it is declared `many=True`, or is the `list` of ListModelMixin.

        drf-spectacular's default also calls every action named `list` a list, which documented the
        usage summary and the entitlements (single objects) as arrays."""
        if serializer is None:
            serializer = self.get_response_serializers()
        if isinstance(serializer, dict) and serializer:
            by_code = {str(code[0] if isinstance(code, tuple) else code): s for code, s in serializer.items()}
            serializer = by_code[min(by_code)]
        if is_list_serializer(serializer):
            return True
        if is_basic_type(serializer):
            return False
        return self._is_paginated_list()

    def _get_paginator(self):
        # Only ListModelMixin.list paginates; an action returning `many=True` answers a bare array.
        return super()._get_paginator() if self._is_paginated_list() else None

    def _is_paginated_list(self) -> bool:
        return isinstance(self.view, ListModelMixin) and getattr(self.view, "action", None) == "list"

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not path.startswith("/api/v1/"):
            return operation
        responses = operation["responses"]
        for status, response in error_responses(*self._error_statuses(operation)).items():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(response, str(status))
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_statuses(self, operation: dict) -> list[int]:
        """The statuses any operation shaped like this one can answer, whatever its view adds."""
        parameters = operation.get("parameters", [])
        query = {p["name"] for p in parameters if p["in"] == "query"}
        has_body = "requestBody" in operation
        statuses = []
        if has_body or query - _LENIENT_QUERY_PARAMETERS:
            statuses.append(400)  # field errors, malformed JSON, filter values
        if self.view.authentication_classes:
            # A bad token is refused before any permission check, even on an open view, and a session
            # without its CSRF token is refused with 403.
            statuses += [401, 403]
        if any(p["in"] == "path" for p in parameters) or "cursor" in query:
            statuses.append(404)  # an id that is not the caller's, or a cursor that was tampered with
        if self.method == "POST":
            statuses.append(409)  # Idempotency-Key reused with another body
        if has_body:
            statuses += [413, 415]  # a body over DATA_UPLOAD_MAX_MEMORY_SIZE; one in a media type no parser reads
        if self.view.throttle_classes:
            statuses.append(429)
        return statuses


_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the tightest limited window of the customer's plan. Sent on every "
                         "answer to a customer whose plan limits requests (errors and 403s included); absent "
                         "for plans without limits and for staff, who have no limit to report.",
    "X-RateLimit-Remaining": "Requests left in that window.",
    "X-RateLimit-Reset": "Seconds until that window starts again.",
}


def add_api_headers(result, generator, request, public):
    """Rate-limit headers on every /api/v1/ response, Retry-After on 429s, Idempotent-Replayed on POSTs."""
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path == "/api/v1/auth/token/":
            continue
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                for name, description in _RATE_LIMIT_HEADERS.items():
                    headers[name] = {"schema": {"type": "integer"}, "description": description}
                if status == "429":
                    headers["Retry-After"] = {"schema": {"type": "integer"},
                                              "description": "Seconds to wait before retrying."}
                if method == "post" and status.startswith("2"):
                    headers["Idempotent-Replayed"] = {
                        "schema": {"type": "string", "enum": ["true"]},
                        "description": "Present when this is the stored answer to an earlier request with the "
                                       "same Idempotency-Key."}
    return result
