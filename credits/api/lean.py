"""The lean path of `POST /api/v1/credits/debit/`: the common case without DRF's request machinery.

A customer's debit is the API's hot path, and once its one statement was all that was left of its queries,
most of a request's CPU went to DRF (the Request wrapper, content negotiation, the authenticator and parser
objects, the Response and its rendering), to the middleware that has nothing to do for such a request, and
to URL resolving, each small (docs/decisions.md, "The credit debit's lean path"). This middleware, placed
right after the module switch, takes only the common case, decided before anything has an effect:
- the debit's path, no Cookie header (so sessions, CSRF cookies, messages and the language cookie have nothing
  to do, and the middleware after this one that it skips would do nothing but what it calls itself);
- `Authorization: Token <key>` (so DRF's token authentication alone decides who calls: session
  authentication and its CSRF check are never reached), the key's holder active and not staff;
- a JSON body (`Content-Type: application/json` exactly, no query string, Accept absent, `*/*` or
  `application/json`, so DRF would answer JSON too) of the plain shape `credit_debit_plain` takes as it is,
  naming no customer or the caller's own;
- no `Idempotency-Key` header (its claim and record stay the view's);
- every permission class of the view passes, checked by the view's own classes on the view's own instance.
Everything else goes on down the middleware to the router's DRF view, which answers it as before: wrong
method (405), another content type (415), malformed or unusual bodies (400), unknown, revoked or inactive
tokens (401), refusals (403), another customer (404), staff. The module switch and the request guard run
before this middleware, SecurityMiddleware and WhiteNoise around it, for both paths.

What the path does is what the view does, with the view's own parts: the language LocaleMiddleware picks
(its own hooks), then the customer's preferred one when the request names none, the view's throttles
(counted once, the X-RateLimit-* headers, 429 through the API's exception handler), `credit_debit_answer`
(the view's own service call and body), every error of the service (402 with the balance, 409, ...)
through the API's exception handler, rendered by DRF's JSONRenderer, DRF's `Allow` and `Vary: Accept`
headers, then the response hooks of the skipped middleware that act on such an answer (X-Frame-Options,
Content-Length, Content-Language and Vary: Accept-Language). It refuses to start when the middleware after
it is not the list it knows. credits/tests/test_api_lean.py sends a corpus of requests through both paths
and pins the same status, body and headers.
"""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.urls import resolve
from django.utils import translation
from django.utils.cache import patch_vary_headers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.safe_input import json_loads_checked
from credits.api.serializers import credit_debit_plain
from credits.api.views import credit_debit_answer
from subscriptions.api.base import rate_limit_headers_set
from subscriptions.api.client import api_client_for
from subscriptions.api.tokens import api_token_user
from subscriptions.models import Customer

PATH = "/api/v1/credits/debit/"
_JSON = "application/json"
# Accept headers for which DRF's content negotiation picks JSONRenderer with the media type `application/json`.
_JSON_ACCEPTED = frozenset({None, "*/*", _JSON})
_RENDERER = JSONRenderer()
# The middleware after this one, which a lean request skips: for a request with no cookie to a CSRF-exempt
# view, only Locale, Common and XFrameOptions act, and their hooks are called here.
SKIPPED_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)


def _unused(request):  # the skipped middleware's own get_response: never called, only their hooks are
    raise AssertionError("not called")


class CreditDebitLeanMiddleware:
    def __init__(self, get_response):
        following = tuple(settings.MIDDLEWARE[settings.MIDDLEWARE.index(f"{__name__}.{type(self).__name__}") + 1:])
        if following != SKIPPED_MIDDLEWARE:
            raise ImproperlyConfigured(f"{type(self).__name__} knows what these middleware do for a debit: "
                                       f"{SKIPPED_MIDDLEWARE}, not {following}; update it with them.")
        self.get_response = get_response
        self.locale, self.common = LocaleMiddleware(_unused), CommonMiddleware(_unused)
        self.xframe = XFrameOptionsMiddleware(_unused)

    def __call__(self, request: HttpRequest):
        if request.path_info != PATH or request.META.get("HTTP_COOKIE"):
            return self.get_response(request)
        common = _common_case(request)
        if common is None or not self._before(request):
            return self.get_response(request)
        response = _debit(request, *common)
        for hook in (self.xframe, self.common, self.locale):
            response = hook.process_response(request, response)
        return response

    def _before(self, request: HttpRequest) -> bool:
        """The skipped middleware's request hooks that act here; False when one answers or refuses (the
        middleware chain then does it again, with the same outcome)."""
        try:
            if self.common.process_request(request) is not None:
                return False
        except Exception:
            return False
        self.locale.process_request(request)
        return True


def _common_case(request: HttpRequest):
    """(the viewset instance, the caller, their ApiClient, the validated body) when this path takes the
    request, else None. Nothing here has an effect the DRF view would not have had on the same request."""
    meta = request.META
    if (request.method != "POST" or meta.get("QUERY_STRING") or meta.get("CONTENT_TYPE") != _JSON
            or meta.get("HTTP_ACCEPT") not in _JSON_ACCEPTED or "HTTP_IDEMPOTENCY_KEY" in meta
            or not meta.get("CONTENT_LENGTH", "").isdigit()):
        return None
    key = _token_key(meta.get("HTTP_AUTHORIZATION", ""))
    if key is None:
        return None
    user = api_token_user(key=key)
    if user is None or not user.is_active or user.is_staff:
        return None
    client = api_client_for(user=user)
    try:
        data = credit_debit_plain(json_loads_checked(request.body.decode()))
    except ValueError:  # not UTF-8, not JSON, or JSON the API's parser refuses
        return None
    if client.customer_id is None or data is None or data.get("customer", client.customer_id) != client.customer_id:
        return None
    view = _viewset(request)
    request.user = user  # what DRF's authentication sets on the request it wraps
    if not all(permission.has_permission(request, view) for permission in view.get_permissions()):
        return None
    return view, user, client, data


def _token_key(header: str) -> str | None:
    """The key of `Token <key>`, split as DRF's TokenAuthentication splits it; None for any other header
    (ASCII only, so str.split and DRF's bytes.split agree)."""
    if not header.isascii():
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "token":
        return None
    return parts[1]


@cache
def _router_view():
    """The router's view of the debit (an `as_view()` of the viewset), which answers every other request."""
    return resolve(PATH).func


def _viewset(request: HttpRequest):
    """The viewset instance the router's view would build for this request (ViewSetMixin.as_view), from its
    class, init arguments and action map."""
    fallback = _router_view()
    view = fallback.cls(**fallback.initkwargs)
    view.action_map = fallback.actions
    for method, action in fallback.actions.items():
        setattr(view, method, getattr(view, action))
    view.request, view.args, view.kwargs, view.format_kwarg = request, (), {}, None
    view.action = fallback.actions["post"]
    return view


def _debit(request: HttpRequest, view, user, client, data: dict):
    if "HTTP_ACCEPT_LANGUAGE" not in request.META and client.language:
        translation.activate(client.language)  # ApiViewMixin.perform_authentication
    try:
        _check_throttles(request, view)
        body, status = credit_debit_answer(user=user, customer=Customer(pk=client.customer_id), data=data)
        response = HttpResponse(_RENDERER.render(body, _JSON, {}), status=status, content_type=_JSON)
    except Exception as exc:
        response = view.get_exception_handler()(exc, view.get_exception_handler_context())
        if response is None:
            raise  # a bug: Django answers 500 and logs it, as DRF's view would have it
        response.accepted_renderer, response.accepted_media_type, response.renderer_context = _RENDERER, _JSON, {}
    response = _finalized(request, view, response)
    if isinstance(response, Response):
        response.render()  # as Django's handler renders a view's answer before the middleware sees it
    return response


def _check_throttles(request: HttpRequest, view) -> None:
    """APIView.check_throttles, on the Django request (the throttles read its user and leave `rate_limit`)."""
    waits = [throttle.wait() for throttle in view.get_throttles() if not throttle.allow_request(request, view)]
    if waits:
        view.throttled(request, max((wait for wait in waits if wait is not None), default=None))


def _finalized(request: HttpRequest, view, response: HttpResponse | Response) -> HttpResponse:
    """APIView.finalize_response's headers (Allow, Vary: Accept) and ApiViewMixin's X-RateLimit-*."""
    headers = dict(view.default_response_headers)
    vary = headers.pop("Vary", None)
    if vary is not None:
        patch_vary_headers(response, [vary])
    for name, value in headers.items():
        response[name] = value
    rate_limit_headers_set(request=request, response=response)
    return response
