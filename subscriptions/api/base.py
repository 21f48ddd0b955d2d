"""The base every API view builds on: idempotent POSTs, rate-limit headers, customer scoping."""

import hashlib
import json
from functools import cached_property

from django.shortcuts import get_object_or_404
from django.utils import translation
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from subscriptions.api.client import ApiClient, api_client_for
from subscriptions.models import Customer
from subscriptions.services import (
    idempotency_key_claim,
    idempotency_key_record_response,
    idempotency_key_release,
)

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Any unique string (a UUID). Repeating a POST with the same key and body answers the first "
                "response again, with `Idempotent-Replayed: true`, and does nothing twice; the same key with "
                "another body answers 409 `idempotency_conflict`, and the same key while the first request is still "
                "running answers 409 `idempotency_request_in_progress` (retry later). Keys are kept at least "
                "24 hours, per customer.",
)


def rate_limit_headers_set(*, request, response) -> None:
    """The X-RateLimit-* headers of the limit the throttles counted this request against, if any."""
    state = getattr(request, "rate_limit", None)
    if state is not None:
        response["X-RateLimit-Limit"] = str(state.limit)
        response["X-RateLimit-Remaining"] = str(state.remaining)
        response["X-RateLimit-Reset"] = str(state.reset)


class ApiViewMixin:
    """Mixed into every API view (before the DRF class)."""

    @cached_property
    def api_client(self) -> ApiClient:
        return api_client_for(user=self.request.user)

    # -- scoping ------------------------------------------------------------------------------
    def scoped(self, queryset, lookup: str = "customer_id"):
        """Staff see every row; a customer only its own, so other customers' ids are 404s."""
        if getattr(self, "swagger_fake_view", False):  # schema generation has no signed-in user
            return queryset.none()
        client = self.api_client
        if client.is_staff:
            return queryset
        if client.customer_id is None:
            return queryset.none()
        return queryset.filter(**{lookup: client.customer_id})

    def acting_customer(self, customer_id: int | None = None) -> Customer:
        """The customer a write is for: the caller's own, or for staff the one named in the body."""
        client = self.api_client
        if client.is_staff:
            if customer_id is None:
                raise serializers.ValidationError({"customer": ["Staff must say which customer this is for."]})
            return get_object_or_404(Customer, pk=customer_id)
        if client.customer_id is None or (customer_id is not None and customer_id != client.customer_id):
            return get_object_or_404(Customer.objects.none())
        return get_object_or_404(Customer, pk=client.customer_id)

    # -- the reader's language ---------------------------------------------------------------
    def perform_authentication(self, request):
        """Once the caller is known, speak the customer's preferred language unless the request asked
        for one with Accept-Language (LocaleMiddleware already chose that); `code`s stay English."""
        super().perform_authentication(request)
        if "Accept-Language" in request.headers or not request.user.is_authenticated:
            return
        language = self.api_client.language
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()

    # -- plan limits --------------------------------------------------------------------------
    def check_permissions(self, request):
        """Count the request against the plan limits before the permission checks (DRF checks them
        after), so a request refused with 403 is counted too and carries the X-RateLimit-* headers:
        a customer's every answer says where it stands."""
        self.check_throttles(request)
        self._throttles_checked = True
        super().check_permissions(request)

    def check_throttles(self, request):
        if not getattr(self, "_throttles_checked", False):
            super().check_throttles(request)

    # -- idempotency and headers --------------------------------------------------------------
    def dispatch(self, request, *args, **kwargs):
        """APIView.dispatch, with POSTs that carry an Idempotency-Key run through `_run_idempotent`."""
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            key = request.headers.get("Idempotency-Key")
            # The raw body is hashed before DRF's parsers consume the stream.
            body_hash = hashlib.sha256(request._request.body).hexdigest() if key is not None else None
            self.initial(request, *args, **kwargs)
            if request.method.lower() in self.http_method_names:
                handler = getattr(self, request.method.lower(), self.http_method_not_allowed)
            else:
                handler = self.http_method_not_allowed
            if key is not None and request.method == "POST" and request.user.is_authenticated:
                response = self._run_idempotent(request, key, body_hash, handler, *args, **kwargs)
            else:
                response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _run_idempotent(self, request, key, body_hash, handler, *args, **kwargs):
        """Claim the key (committed), run the view outside any transaction of ours, record the answer.

        No transaction spans the view: each service it calls commits its own writes, and a view that
        calls a payment provider does so with no lock held (the key's row included). A 5xx or an
        exception releases the claim, so the client's retry runs again."""
        client = self.api_client
        claim = idempotency_key_claim(key=key, method=request.method, path=request.path, request_hash=body_hash,
                                      customer_id=client.customer_id, user_id=request.user.pk)
        if not claim.fresh:
            return Response(claim.record.response_body, status=claim.record.response_status,
                            headers={"Idempotent-Replayed": "true"})
        try:
            try:
                response = handler(request, *args, **kwargs)
            except Exception as exc:
                response = self.handle_exception(exc)
        except BaseException:
            idempotency_key_release(record=claim.record)
            raise
        if response.status_code >= 500:
            # A server failure is not an answer: forget the key so the client's retry runs again.
            idempotency_key_release(record=claim.record)
            return response
        body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
        idempotency_key_record_response(record=claim.record, status=response.status_code, body=body)
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        rate_limit_headers_set(request=request, response=response)
        return response
