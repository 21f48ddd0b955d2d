"""Moves the stale-card guard out of Customer.metadata (which customers write through the API) into
Customer.stripe_default_payment_method_set_at, and drops the informational `..._set_by` key with it."""

from datetime import UTC, datetime

from django.db import migrations

_SET_AT = "stripe_default_payment_method_set_at"
_SET_BY = "stripe_default_payment_method_set_by"


def _written_by_us(raw, *, now: datetime) -> datetime | None:
    """The stored time if it can be one we wrote (an aware time not in the future); a customer may have
    written anything there, and a far-future value carried over would switch card updates off for good."""
    try:
        value = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if value is None or value.tzinfo is None or value > now:
        return None
    return value


def forwards(apps, schema_editor):
    Customer = apps.get_model("subscriptions", "Customer")
    now = datetime.now(UTC)
    for customer in Customer.objects.filter(metadata__has_any_keys=[_SET_AT, _SET_BY]):
        raw = customer.metadata.pop(_SET_AT, None)
        customer.metadata.pop(_SET_BY, None)
        customer.stripe_default_payment_method_set_at = _written_by_us(raw, now=now)
        customer.save(update_fields=["metadata", "stripe_default_payment_method_set_at"])


def backwards(apps, schema_editor):
    Customer = apps.get_model("subscriptions", "Customer")
    for customer in Customer.objects.filter(stripe_default_payment_method_set_at__isnull=False):
        customer.metadata = {**customer.metadata,
                             _SET_AT: customer.stripe_default_payment_method_set_at.isoformat()}
        customer.save(update_fields=["metadata"])


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0004_customer_card_set_at_resume_permission")]

    operations = [migrations.RunPython(forwards, backwards)]
