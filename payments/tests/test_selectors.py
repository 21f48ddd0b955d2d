"""The dashboard's figures: what each one counts, and that each costs one query whatever the data."""

import pytest

from credits.selectors import CreditsOutstanding
from payments.selectors import Collected, Receivables, dashboard_figures
from payments.tests.books import NOW, build_books
from subscriptions.tests.factories import PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_dashboard_figures_match_the_books():
    build_books()

    figures = dashboard_figures(now=NOW)

    # 1000 monthly + 12000 yearly / 12 in USD; 3000 every three months in EUR. Trials, incomplete,
    # paused and canceled subscriptions bring nothing.
    assert figures.mrr == {"EUR": 1000, "USD": 2000}
    assert figures.subscriptions_by_status == {"incomplete": 1, "trialing": 1, "active": 2, "past_due": 1,
                                               "paused": 1, "canceled": 2}
    assert figures.receivables == [
        Receivables(currency="EUR", open_count=1, open_amount=700, past_due_count=1, past_due_amount=700),
        Receivables(currency="USD", open_count=2, open_amount=4000, past_due_count=1, past_due_amount=1500),
    ]
    assert figures.collected == [
        Collected(currency="EUR", count=1, gross=800, refunded=800),
        Collected(currency="USD", count=2, gross=8000, refunded=1000),
    ]
    assert figures.collected[1].net == 7000
    assert figures.credits == CreditsOutstanding(credits=300, customers=1)


def test_dashboard_figures_of_empty_books_are_zero():
    figures = dashboard_figures(now=NOW)

    assert figures.mrr == {}
    assert set(figures.subscriptions_by_status.values()) == {0}
    assert (figures.receivables, figures.collected) == ([], [])
    assert figures.credits == CreditsOutstanding(credits=0, customers=0)


def test_monthly_recurring_revenue_rounds_once_per_currency():
    plan = PlanFactory(code="odd-yearly", amount=1001, interval="year")
    SubscriptionFactory(plan=plan, customer__user=None)
    SubscriptionFactory(plan=plan, customer__user=None)

    # 2 x 1001 / 12 = 166.83: rounded once to 167, not 83 + 83 = 166.
    assert dashboard_figures(now=NOW).mrr == {"USD": 167}


def test_dashboard_figures_take_five_queries_whatever_the_data(django_assert_num_queries):
    with django_assert_num_queries(5):
        dashboard_figures(now=NOW)
    build_books()

    with django_assert_num_queries(5):
        dashboard_figures(now=NOW)
