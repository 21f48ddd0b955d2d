"""The customer's Stripe columns and Plan.stripe_price_id go: payments.0008 copied them into
payments.ProviderAccount and payments.ProviderPlanPrice first (and copies them back when reversed,
after this migration has re-created the columns)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0008_plan_usage_batch_max_events"),
        ("payments", "0009_neutral_provider_columns_and_accounts"),
    ]

    operations = [
        migrations.RemoveField("customer", "stripe_customer_id"),
        migrations.RemoveField("customer", "stripe_default_payment_method_id"),
        migrations.RemoveField("customer", "stripe_default_payment_method_set_at"),
        migrations.RemoveField("plan", "stripe_price_id"),
    ]
