"""Neutral provider columns (issue 10, item 2), with every row and id kept.

Schema first (new columns, the provider account and plan price tables, the inbox renamed), then the data
is copied (`provider_data_forward`: Stripe's and PayPal's ids into `provider` plus the provider's ids;
the customer's Stripe columns into a ProviderAccount; Plan.stripe_price_id into a ProviderPlanPrice),
then the old payment and refund columns go. The customer's and plan's old columns are removed by
subscriptions.0008, which runs after this one, so reversing re-creates them before the data is copied
back (`provider_data_backward`).
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Q

STRIPE = "stripe"
PAYPAL = "paypal"
MANUAL = "manual"
# Payment.method values whose rail holds provider ids; every other method is the manual rail's.
RAIL_OF_METHOD = {STRIPE: STRIPE, PAYPAL: PAYPAL}


def payments_forward(Payment) -> None:
    for method, rail in RAIL_OF_METHOD.items():
        Payment.objects.filter(method=method).update(provider=rail)
    Payment.objects.exclude(method__in=list(RAIL_OF_METHOD)).update(provider=MANUAL)
    Payment.objects.filter(stripe_payment_intent_id__isnull=False).update(
        provider=STRIPE, provider_payment_id=models.F("stripe_payment_intent_id"))
    Payment.objects.filter(stripe_charge_id__isnull=False).update(provider_charge_id=models.F("stripe_charge_id"))
    Payment.objects.filter(paypal_order_id__isnull=False).update(
        provider=PAYPAL, provider_payment_id=models.F("paypal_order_id"))


def refunds_forward(Refund, Payment) -> None:
    # A refund belongs to its payment's rail; one with a Stripe id was made by Stripe whatever the payment.
    Refund.objects.update(provider=models.Subquery(
        Payment.objects.filter(pk=models.OuterRef("payment_id")).values("provider")[:1]))
    Refund.objects.filter(stripe_refund_id__isnull=False).update(
        provider=STRIPE, provider_refund_id=models.F("stripe_refund_id"))


def customers_forward(Customer, ProviderAccount) -> None:
    has_stripe = Q(stripe_customer_id__isnull=False) | ~Q(stripe_default_payment_method_id="")
    rows = Customer.objects.filter(has_stripe).values_list(
        "pk", "stripe_customer_id", "stripe_default_payment_method_id", "stripe_default_payment_method_set_at")
    ProviderAccount.objects.bulk_create(
        ProviderAccount(customer_id=pk, provider=STRIPE, provider_customer_id=customer_id,
                        default_payment_method_id=method_id, default_payment_method_set_at=set_at)
        for pk, customer_id, method_id, set_at in rows.iterator())


def plans_forward(Plan, ProviderPlanPrice) -> None:
    rows = Plan.objects.filter(stripe_price_id__isnull=False).values_list("pk", "stripe_price_id")
    ProviderPlanPrice.objects.bulk_create(ProviderPlanPrice(plan_id=pk, provider=STRIPE, provider_price_id=price_id)
                                          for pk, price_id in rows.iterator())


def _constraints_immediate(schema_editor) -> None:
    """PostgreSQL queues the deferred foreign-key checks of the rows this migration updates; the columns
    removed after the copy could not be altered while they wait ("pending trigger events")."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def provider_data_forward(apps, schema_editor) -> None:
    _constraints_immediate(schema_editor)
    payments_forward(apps.get_model("payments", "Payment"))
    refunds_forward(apps.get_model("payments", "Refund"), apps.get_model("payments", "Payment"))
    customers_forward(apps.get_model("subscriptions", "Customer"), apps.get_model("payments", "ProviderAccount"))
    plans_forward(apps.get_model("subscriptions", "Plan"), apps.get_model("payments", "ProviderPlanPrice"))


def provider_data_backward(apps, schema_editor) -> None:
    """The same ids back into the old columns. Only Stripe's and PayPal's ids had columns: rows of a rail
    added since keep nothing on the way back (there was nowhere to keep them)."""
    _constraints_immediate(schema_editor)
    Payment = apps.get_model("payments", "Payment")
    Payment.objects.filter(provider=STRIPE).update(stripe_payment_intent_id=models.F("provider_payment_id"),
                                                   stripe_charge_id=models.F("provider_charge_id"))
    Payment.objects.filter(provider=PAYPAL).update(paypal_order_id=models.F("provider_payment_id"))
    Refund = apps.get_model("payments", "Refund")
    Refund.objects.filter(provider=STRIPE).update(stripe_refund_id=models.F("provider_refund_id"))
    Customer = apps.get_model("subscriptions", "Customer")
    accounts = apps.get_model("payments", "ProviderAccount").objects.filter(provider=STRIPE)
    for account in accounts.iterator():
        Customer.objects.filter(pk=account.customer_id).update(
            stripe_customer_id=account.provider_customer_id,
            stripe_default_payment_method_id=account.default_payment_method_id,
            stripe_default_payment_method_set_at=account.default_payment_method_set_at)
    Plan = apps.get_model("subscriptions", "Plan")
    for price in apps.get_model("payments", "ProviderPlanPrice").objects.filter(provider=STRIPE).iterator():
        Plan.objects.filter(pk=price.plan_id).update(stripe_price_id=price.provider_price_id)


def inbox_forward(apps, schema_editor) -> None:
    """Permissions follow the renamed inbox: staff who could reprocess Stripe events still can."""
    Permission = apps.get_model("auth", "Permission")
    for action in ("add", "change", "delete", "view"):
        Permission.objects.filter(content_type__app_label="payments", codename=f"{action}_stripeevent").update(
            codename=f"{action}_providerevent", name=f"Can {action} provider event")


def inbox_backward(apps, schema_editor) -> None:
    Permission = apps.get_model("auth", "Permission")
    for action in ("add", "change", "delete", "view"):
        Permission.objects.filter(content_type__app_label="payments", codename=f"{action}_providerevent").update(
            codename=f"{action}_stripeevent", name=f"Can {action} stripe event")


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("payments", "0008_one_off_invoice_note_payment_description_credit_entries"),
        ("subscriptions", "0008_plan_usage_batch_max_events"),
    ]

    operations = [
        # Payment and Refund: the rail and its ids. Existing rows get "manual" until the data step.
        migrations.AddField("payment", "provider", models.CharField(default=MANUAL, max_length=32),
                            preserve_default=False),
        migrations.AddField("payment", "provider_payment_id", models.CharField(blank=True, max_length=255, null=True)),
        migrations.AddField("payment", "provider_charge_id", models.CharField(blank=True, max_length=255, null=True)),
        migrations.AddField("refund", "provider", models.CharField(default=MANUAL, max_length=32),
                            preserve_default=False),
        migrations.AddField("refund", "provider_refund_id", models.CharField(blank=True, max_length=255, null=True)),
        migrations.CreateModel(
            name="ProviderAccount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("provider", models.CharField(max_length=32)),
                ("provider_customer_id", models.CharField(blank=True, max_length=255, null=True)),
                ("default_payment_method_id", models.CharField(blank=True, max_length=255)),
                ("default_payment_method_set_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("customer", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                               related_name="provider_accounts", to="subscriptions.customer")),
            ],
            options={"ordering": ["customer_id", "provider"]},
        ),
        migrations.CreateModel(
            name="ProviderPlanPrice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("provider", models.CharField(max_length=32)),
                ("provider_price_id", models.CharField(max_length=255)),
                ("provider_product_id", models.CharField(blank=True, max_length=255)),
                ("plan", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="provider_prices", to="subscriptions.plan")),
            ],
            options={"ordering": ["plan_id", "provider"]},
        ),
        # The inbox: StripeEvent becomes every rail's ProviderEvent; its rows are Stripe's.
        migrations.RemoveConstraint("stripeevent", "stripe_event_status_valid"),
        migrations.RenameModel("StripeEvent", "ProviderEvent"),
        migrations.RenameField("providerevent", "stripe_created_at", "provider_created_at"),
        migrations.AddField("providerevent", "provider", models.CharField(default=STRIPE, max_length=32),
                            preserve_default=False),
        migrations.AlterField("providerevent", "event_id", models.CharField(max_length=255)),
        migrations.AlterField("providerevent", "status", models.CharField(
            choices=[("pending", "Pending"), ("processed", "Processed"), ("failed", "Failed"),
                     ("ignored", "Ignored")], default="pending", max_length=16)),
        migrations.RunPython(inbox_forward, inbox_backward),
        migrations.RunPython(provider_data_forward, provider_data_backward),
        migrations.RemoveField("payment", "stripe_payment_intent_id"),
        migrations.RemoveField("payment", "stripe_charge_id"),
        migrations.RemoveField("payment", "paypal_order_id"),
        migrations.RemoveField("refund", "stripe_refund_id"),
        migrations.AddConstraint("payment", models.CheckConstraint(condition=~Q(provider=""),
                                                                   name="payment_provider_set")),
        migrations.AddConstraint("refund", models.CheckConstraint(condition=~Q(provider=""),
                                                                  name="refund_provider_set")),
        migrations.AddConstraint("provideraccount", models.CheckConstraint(condition=~Q(provider=""),
                                                                           name="provider_account_provider_set")),
        migrations.AddConstraint("payment", models.UniqueConstraint(
            condition=Q(provider_payment_id__isnull=False), fields=("provider", "provider_payment_id"),
            name="payment_provider_payment_id_unique")),
        migrations.AddConstraint("payment", models.UniqueConstraint(
            condition=Q(provider_charge_id__isnull=False), fields=("provider", "provider_charge_id"),
            name="payment_provider_charge_id_unique")),
        migrations.AddConstraint("refund", models.UniqueConstraint(
            condition=Q(provider_refund_id__isnull=False), fields=("provider", "provider_refund_id"),
            name="refund_provider_refund_id_unique")),
        migrations.AddConstraint("provideraccount", models.UniqueConstraint(
            fields=("customer", "provider"), name="provider_account_one_per_rail")),
        migrations.AddConstraint("provideraccount", models.UniqueConstraint(
            condition=Q(provider_customer_id__isnull=False), fields=("provider", "provider_customer_id"),
            name="provider_account_customer_id_unique")),
        migrations.AddConstraint("providerplanprice", models.UniqueConstraint(
            fields=("plan", "provider"), name="provider_plan_price_one_per_rail")),
        migrations.AddConstraint("providerplanprice", models.UniqueConstraint(
            fields=("provider", "provider_price_id"), name="provider_plan_price_id_unique")),
        migrations.AddConstraint("providerevent", models.CheckConstraint(
            condition=Q(status__in=["pending", "processed", "failed", "ignored"]),
            name="provider_event_status_valid")),
        migrations.AddConstraint("providerevent", models.UniqueConstraint(
            fields=("provider", "event_id"), name="provider_event_id_unique")),
    ]
