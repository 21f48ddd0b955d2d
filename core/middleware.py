"""Request-level refusals, before any view: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413), and a path,
query parameter or header carrying text the database cannot store (400, see core.safe_input).

DRF reads a JSON body straight from the stream, past Django's size check on `request.body`, so the
limit is enforced here from Content-Length for every door (API, webhooks, admin). Query strings and
headers reach the database through filters, searches, token and Idempotency-Key lookups; checking them
once here covers every one of those. API paths answer in the API's error shape.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import HttpHeaders
from django.utils.translation import gettext as _

from core.api.errors import error_body
from core.safe_input import text_problem

API_PREFIX = "/api/"


def _unstorable_input(request: HttpRequest) -> dict[str, list[str]]:
    if problem := text_problem(request.path):
        return {"path": [problem]}
    if request.META.get("QUERY_STRING"):  # no query string, no parameters: QueryDict is not built for nothing
        for key, values in request.GET.lists():
            for value in (key, *values):
                if problem := text_problem(value):
                    return {key: [problem]}
    # Every header value in one search, as `request.headers` holds them (HTTP_* and the unprefixed two), joined
    # by a character the search does not look for: building `request.headers` on every request to check each
    # value apart was a fiftieth of a credit debit's CPU. Only a request with a problem builds it, to name it.
    meta = request.META
    values = "\n".join(value for key, value in meta.items()
                       if key.startswith("HTTP_") or key in HttpHeaders.UNPREFIXED_HEADERS)
    if text_problem(values) is None:
        return {}
    for name, value in request.headers.items():
        if problem := text_problem(value):
            return {name: [problem]}
    return {}


def _too_large(request: HttpRequest) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False  # Django reads such a body as empty
    return limit is not None and length > limit


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if _too_large(request):
            message = (_("The request body is larger than %(limit)s bytes (DATA_UPLOAD_MAX_MEMORY_SIZE).")
                       % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
            return self._refuse(request, status=413, code="request_too_large", message=message, fields={})
        if fields := _unstorable_input(request):
            return self._refuse(request, status=400, code="invalid", fields=fields,
                                message=_("Invalid input: %(reason)s") % {"reason": next(iter(fields.values()))[0]})
        return self.get_response(request)

    def _refuse(self, request: HttpRequest, *, status: int, code: str, message: str, fields: dict) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            return JsonResponse(error_body(type_="invalid_request", code=code, message=message, fields=fields),
                                status=status)
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
