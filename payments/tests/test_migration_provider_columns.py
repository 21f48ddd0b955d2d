"""payments.0008 and subscriptions.0008 move every provider id into the neutral columns, the provider
accounts and the plan prices, and back when reversed: run on rows written with the old schema."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("payments", "0008_one_off_invoice_note_payment_description_credit_entries"),
          ("subscriptions", "0008_plan_usage_batch_max_events")]
AFTER = [("payments", "0009_neutral_provider_columns_and_accounts"),
         ("subscriptions", "0009_provider_ids_move_to_payments")]
CARD_SAVED_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
EVENT_CREATED_AT = datetime(2026, 3, 2, tzinfo=UTC)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_schema():
    """The database at the migrations before this change; put back at the newest ones afterwards."""
    apps = _migrate(BEFORE)
    yield apps
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def _old_rows(apps) -> dict:
    Customer, Plan = apps.get_model("subscriptions", "Customer"), apps.get_model("subscriptions", "Plan")
    Payment, Refund = apps.get_model("payments", "Payment"), apps.get_model("payments", "Refund")
    carded = Customer.objects.create(name="Card", email="card@example.com", currency="USD", stripe_customer_id="cus_A",
                                     stripe_default_payment_method_id="pm_A",
                                     stripe_default_payment_method_set_at=CARD_SAVED_AT)
    plain = Customer.objects.create(name="Cash", email="cash@example.com", currency="USD")
    Plan.objects.create(code="pro", name="Pro", amount=2000, currency="USD", stripe_price_id="price_pro")
    Plan.objects.create(code="free", name="Free", amount=0, currency="USD")
    card = Payment.objects.create(customer=carded, amount=2000, currency="USD", method="stripe", status="succeeded",
                                  stripe_payment_intent_id="pi_1", stripe_charge_id="ch_1")
    cash = Payment.objects.create(customer=plain, amount=500, currency="USD", method="cash", status="succeeded")
    paypal = Payment.objects.create(customer=plain, amount=700, currency="USD", method="paypal", status="succeeded",
                                    paypal_order_id="O-1")
    Refund.objects.create(payment=card, amount=100, currency="USD", status="succeeded", stripe_refund_id="re_1")
    Refund.objects.create(payment=cash, amount=50, currency="USD", status="succeeded")
    apps.get_model("payments", "StripeEvent").objects.create(
        event_id="evt_1", type="payment_intent.succeeded", payload={"id": "evt_1"}, status="processed",
        stripe_created_at=EVENT_CREATED_AT)
    return {"carded": carded.pk, "plain": plain.pk, "card": card.pk, "cash": cash.pk, "paypal": paypal.pk}


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_every_provider_id_into_the_neutral_rows(old_schema):
    ids = _old_rows(old_schema)

    apps = _migrate(AFTER)

    Payment, Refund = apps.get_model("payments", "Payment"), apps.get_model("payments", "Refund")
    payments = {p.pk: (p.method, p.provider, p.provider_payment_id, p.provider_charge_id)
                for p in Payment.objects.all()}
    assert payments == {ids["card"]: ("stripe", "stripe", "pi_1", "ch_1"), ids["cash"]: ("cash", "manual", None, None),
                        ids["paypal"]: ("paypal", "paypal", "O-1", None)}
    assert sorted(Refund.objects.values_list("provider", "provider_refund_id")) == [("manual", None),
                                                                                   ("stripe", "re_1")]
    accounts = apps.get_model("payments", "ProviderAccount").objects.values_list(
        "customer_id", "provider", "provider_customer_id", "default_payment_method_id", "default_payment_method_set_at")
    assert list(accounts) == [(ids["carded"], "stripe", "cus_A", "pm_A", CARD_SAVED_AT)]
    prices = apps.get_model("payments", "ProviderPlanPrice").objects.values_list("plan__code", "provider",
                                                                                  "provider_price_id")
    assert list(prices) == [("pro", "stripe", "price_pro")]
    event = apps.get_model("payments", "ProviderEvent").objects.get()
    assert (event.provider, event.event_id, event.provider_created_at, event.status) == (
        "stripe", "evt_1", EVENT_CREATED_AT, "processed")


@pytest.mark.django_db(transaction=True)
def test_reversing_the_migration_puts_every_id_back_in_the_old_columns(old_schema):
    ids = _old_rows(old_schema)
    _migrate(AFTER)

    apps = _migrate(BEFORE)

    Customer, Payment = apps.get_model("subscriptions", "Customer"), apps.get_model("payments", "Payment")
    carded = Customer.objects.get(pk=ids["carded"])
    assert (carded.stripe_customer_id, carded.stripe_default_payment_method_id,
            carded.stripe_default_payment_method_set_at) == ("cus_A", "pm_A", CARD_SAVED_AT)
    assert Customer.objects.get(pk=ids["plain"]).stripe_customer_id is None
    assert apps.get_model("subscriptions", "Plan").objects.get(code="pro").stripe_price_id == "price_pro"
    card, paypal = Payment.objects.get(pk=ids["card"]), Payment.objects.get(pk=ids["paypal"])
    assert (card.stripe_payment_intent_id, card.stripe_charge_id, paypal.paypal_order_id) == ("pi_1", "ch_1", "O-1")
    assert apps.get_model("payments", "Refund").objects.get(payment_id=ids["card"]).stripe_refund_id == "re_1"
    event = apps.get_model("payments", "StripeEvent").objects.get()
    assert (event.event_id, event.stripe_created_at) == ("evt_1", EVENT_CREATED_AT)
