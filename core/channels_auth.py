"""DRF token authentication for WebSocket connections.

A browser cannot set an Authorization header on a WebSocket, so programs hand their API token in the
`Sec-WebSocket-Protocol` header as the two subprotocols `["token", "<key>"]` (the server answers with
`token` only, never the key), or in their first message. Never in the query string: it ends up in
access logs and proxies.
"""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework.authtoken.models import Token

from core.safe_input import text_problem

TOKEN_SUBPROTOCOL = "token"

# Values of scope["token_auth"]: absent when no token was offered in the handshake.
TOKEN_VALID = "valid"
TOKEN_INVALID = "invalid"


def token_user(*, key: str):
    """The active user owning API token `key`, or None."""
    if not isinstance(key, str) or not key or len(key) > 128 or text_problem(key):
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


def subprotocol_token(subprotocols: list[str]) -> str | None:
    """The key offered as `["token", "<key>"]`, or None when the client offered no token."""
    if len(subprotocols) >= 2 and subprotocols[0] == TOKEN_SUBPROTOCOL:
        return subprotocols[1]
    return None


class TokenAuthMiddleware(BaseMiddleware):
    """Replaces scope["user"] with the owner of a token offered as a subprotocol.

    Sits inside AuthMiddlewareStack, so a token wins over a session cookie sent with it. A bad token is
    not an anonymous connection: scope["token_auth"] says so and the consumer closes it.
    """

    async def __call__(self, scope, receive, send):
        key = subprotocol_token(list(scope.get("subprotocols") or []))
        if key is not None:
            scope = dict(scope)
            user = await database_sync_to_async(token_user)(key=key)
            scope["user"] = user or AnonymousUser()
            scope["token_auth"] = TOKEN_VALID if user else TOKEN_INVALID
        return await super().__call__(scope, receive, send)
