"""The API's sign-in: a token for a username and password, with guesses limited."""

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken

from core.api.errors import error_responses
from core.api.throttling import LOGIN_THROTTLES
from subscriptions.api.base import ApiViewMixin


class TokenObtainView(ApiViewMixin, ObtainAuthToken):
    """POST username and password, get the token to send as `Authorization: Token <key>`. Attempts are
    limited per username and per client address, right password or not (429 with Retry-After)."""

    throttle_classes = LOGIN_THROTTLES

    @extend_schema(
        operation_id="auth_token_create", tags=["auth"], auth=[],
        request=AuthTokenSerializer,
        examples=[OpenApiExample("Sign in", value={"username": "acme", "password": "s3cret-pass"},
                                 request_only=True)],
        responses={200: inline_serializer("AuthToken", {"token": serializers.CharField()}),
                   **error_responses(400, 429)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
