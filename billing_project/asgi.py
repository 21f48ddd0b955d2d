import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")

# Django must be set up before anything imports models (the WebSocket routing does).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier  # noqa: E402
from django.urls import re_path  # noqa: E402

from billing_project.warmup import application_warm_up  # noqa: E402
from core.channels_auth import TokenAuthMiddleware  # noqa: E402
from payments.live.delivery import DirectSendMiddleware  # noqa: E402
from payments.live.routing import websocket_urlpatterns  # noqa: E402

application_warm_up()

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    # The Origin check stops other sites' pages from riding a staff member's session cookie
    # (cross-site WebSocket hijacking); a token in the subprotocol wins over the cookie.
    # DirectSendMiddleware keeps the server's own `send` for the live hub's event writes, which need
    # none of the session middleware's work (payments.live.delivery).
    "websocket": AllowedHostsOriginValidator(DirectSendMiddleware(AuthMiddlewareStack(TokenAuthMiddleware(URLRouter([
        *websocket_urlpatterns,
        # Any other path is refused at the handshake instead of raising "No route found".
        re_path(r"", WebsocketDenier.as_asgi()),
    ]))))),
})
