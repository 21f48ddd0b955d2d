import factory

from usage.models import Aggregation, Meter


class MeterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Meter

    code = factory.Sequence(lambda n: f"meter-{n}")
    name = factory.LazyAttribute(lambda m: m.code.title())
    aggregation = Aggregation.SUM
    unit = "call"
