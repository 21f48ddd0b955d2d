"""drf-spectacular post-processing: document the headers every API response carries."""

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
