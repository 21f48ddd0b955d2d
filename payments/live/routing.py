from django.urls import path

from payments.live.consumers import PaymentsConsumer

websocket_urlpatterns = [
    path("ws/payments/", PaymentsConsumer.as_asgi()),
]
