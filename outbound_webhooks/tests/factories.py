import factory

from outbound_webhooks.models import WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    url = "http://127.0.0.1:9/hooks"
    secret = factory.Sequence(lambda n: f"whsec_test_{n}")
    event_types = factory.LazyFunction(lambda: ["invoice.finalized", "invoice.paid", "payment.succeeded"])
