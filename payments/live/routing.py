from django.urls import path

from payments.live.consumers import LiveConsumer, PaymentsConsumer

websocket_urlpatterns = [
    # Every topic on one connection.
    path("ws/", LiveConsumer.as_asgi()),
    # Existing clients of the payments feed: the same protocol.
    path("ws/payments/", PaymentsConsumer.as_asgi()),
]
