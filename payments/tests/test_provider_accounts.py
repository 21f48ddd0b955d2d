"""A customer's accounts at the payment rails: which one the billing run charges, whether a trial may
convert, and the writes every rail shares (payments.selectors / payments.services provider_accounts)."""

from datetime import UTC, datetime, timedelta

import pytest

from core.audit import Actor
from payments.models import ProviderAccount
from payments.selectors import (
    HAS_SAVED_METHOD,
    PROVIDER_ACCOUNTS,
    customer_has_payment_method,
    provider_account_by_reference,
    provider_account_for_charge,
    row_has_saved_payment_method,
    saved_payment_method_exists,
)
from payments.services import provider_account_default_payment_method_set, provider_account_reference_set
from subscriptions.models import Customer, Subscription
from subscriptions.tests.factories import CustomerFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ACTOR = Actor.system("test")


def _account(customer, provider, *, method="", set_at=None, customer_id=None):
    return ProviderAccount.objects.create(customer=customer, provider=provider, provider_customer_id=customer_id,
                                          default_payment_method_id=method, default_payment_method_set_at=set_at)


def test_the_charge_goes_to_the_account_whose_method_was_saved_last_among_the_rails_asked():
    customer = CustomerFactory()
    _account(customer, "stripe", method="pm_1", set_at=T0)
    paypal = _account(customer, "paypal", method="B-1", set_at=T0 + timedelta(days=1))
    _account(customer, "lemonsqueezy", method="", set_at=T0 + timedelta(days=2))

    assert provider_account_for_charge(customer=customer, providers={"stripe", "paypal", "lemonsqueezy"}) == paypal
    assert provider_account_for_charge(customer=customer, providers={"stripe"}).provider == "stripe"
    assert provider_account_for_charge(customer=customer, providers={"lemonsqueezy"}) is None


def test_a_method_saved_without_a_time_counts_as_older_than_any_dated_one():
    customer = CustomerFactory()
    _account(customer, "stripe", method="pm_migrated")
    dated = _account(customer, "paypal", method="B-1", set_at=T0)

    assert provider_account_for_charge(customer=customer, providers={"stripe", "paypal"}) == dated


def test_a_batch_reads_every_customer_s_accounts_in_one_query(django_assert_num_queries):
    customers = [CustomerFactory() for _ in range(3)]
    for customer in customers[:2]:
        _account(customer, "stripe", method="pm_1", set_at=T0)

    with django_assert_num_queries(2):
        loaded = list(Customer.objects.filter(pk__in=[c.pk for c in customers]).prefetch_related(PROVIDER_ACCOUNTS))
        saved = [customer_has_payment_method(customer=customer) for customer in loaded]

    assert saved == [True, True, False]


def test_the_billing_run_s_annotation_answers_for_a_whole_batch_in_its_one_query(django_assert_num_queries):
    subscriptions = [SubscriptionFactory() for _ in range(3)]
    _account(subscriptions[0].customer, "stripe", method="pm_1", set_at=T0)
    _account(subscriptions[1].customer, "paypal", method="B-1", set_at=T0)
    _account(subscriptions[2].customer, "stripe", method="")

    with django_assert_num_queries(1):
        batch = list(Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).select_related("customer")
                     .annotate(**{HAS_SAVED_METHOD: saved_payment_method_exists()}).order_by("pk"))
        saved = [row_has_saved_payment_method(row=row, customer=row.customer) for row in batch]

    assert saved == [True, True, False]
    # Without the annotation the same answer costs a query.
    assert row_has_saved_payment_method(row=subscriptions[2], customer=subscriptions[2].customer) is False


def test_the_first_provider_customer_id_stored_wins_and_is_found_again():
    customer = CustomerFactory()

    provider_account_reference_set(customer=customer, provider="stripe", provider_customer_id="cus_1")
    provider_account_reference_set(customer=customer, provider="stripe", provider_customer_id="cus_2")

    assert provider_account_by_reference(provider="stripe", provider_customer_id="cus_1").customer == customer
    assert provider_account_by_reference(provider="paypal", provider_customer_id="cus_1") is None
    assert provider_account_by_reference(provider="stripe", provider_customer_id="") is None


def test_an_older_message_never_replaces_a_newer_saved_method():
    customer = CustomerFactory()

    assert provider_account_default_payment_method_set(customer=customer, provider="stripe", payment_method_id="pm_new",
                                                       observed_at=T0, actor=ACTOR) is True
    assert provider_account_default_payment_method_set(customer=customer, provider="stripe", payment_method_id="pm_old",
                                                       observed_at=T0 - timedelta(seconds=1), actor=ACTOR) is False

    account = ProviderAccount.objects.get(customer=customer, provider="stripe")
    assert (account.default_payment_method_id, account.default_payment_method_set_at) == ("pm_new", T0)
    assert account.provider_customer_id is None
