import pytest

from billing_project.tests.api_support import api_customer, staff_client
from billing_project.tests.redis_support import TEST_REDIS_URL, WorkerDjangoRedisCache, redis_caches


@pytest.mark.django_db
def test_the_plan_per_minute_limit_answers_429_with_retry_after():
    caller = api_customer(rate_limit_per_minute=3)
    answers = [caller.client.get("/api/v1/invoices/") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    throttled = answers[-1]
    assert int(throttled["Retry-After"]) >= 1
    assert throttled.json()["error"]["type"] == "rate_limit_error"
    assert throttled["X-RateLimit-Limit"] == "3"
    assert 1 <= int(throttled["X-RateLimit-Reset"]) <= 60


@pytest.mark.django_db
def test_calls_per_day_are_limited_too():
    caller = api_customer(api_calls_per_day=2, rate_limit_per_minute=100)
    statuses = [caller.client.get("/api/v1/entitlements/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_headers_come_with_errors_as_well():
    caller = api_customer(rate_limit_per_minute=10, rate_limit_per_hour=100)
    response = caller.client.get("/api/v1/invoices/424242/")
    assert response.status_code == 404
    assert response["X-RateLimit-Limit"] == "10"
    assert response["X-RateLimit-Remaining"] == "9"


@pytest.mark.django_db
def test_customers_are_counted_separately():
    one = api_customer(rate_limit_per_minute=1)
    two = api_customer(rate_limit_per_minute=1)
    assert one.client.get("/api/v1/invoices/").status_code == 200
    assert two.client.get("/api/v1/invoices/").status_code == 200
    assert one.client.get("/api/v1/invoices/").status_code == 429


@pytest.mark.django_db
def test_staff_are_not_throttled():
    client = staff_client()
    assert {client.get("/api/v1/invoices/").status_code for _ in range(30)} == {200}


@pytest.mark.django_db
def test_a_plan_without_api_access_gets_403_with_a_clear_message():
    caller = api_customer(features=[], name="Starter")
    response = caller.client.get("/api/v1/usage/events/")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "plan_feature_missing"
    assert "Starter" in error["message"] and "api_access" in error["message"]
    # Account endpoints stay open so the customer can see and change its plan.
    assert caller.client.get("/api/v1/entitlements/").status_code == 200


@pytest.mark.django_db
def test_no_subscription_means_no_api_access():
    caller = api_customer(subscribed=False)
    response = caller.client.get("/api/v1/invoices/")
    assert response.status_code == 403
    assert "no active subscription" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_plan_limits_are_cached_so_a_request_reads_the_plan_once(django_assert_max_num_queries):
    caller = api_customer(rate_limit_per_minute=100)
    caller.client.get("/api/v1/entitlements/")  # fills the cache
    # token + customer + live subscription + balance + meter prices; the plan limits come from the cache.
    with django_assert_max_num_queries(5):
        assert caller.client.get("/api/v1/entitlements/").status_code == 200


@pytest.mark.django_db
def test_a_plan_change_through_the_api_applies_the_new_limits_at_once():
    caller = api_customer(rate_limit_per_minute=2, amount=0)
    bigger = type(caller.plan).objects.create(code="big", name="Big", amount=0, features=["api_access"],
                                              rate_limit_per_minute=50)
    caller.client.get("/api/v1/invoices/")
    response = caller.client.post(f"/api/v1/subscriptions/{caller.subscription.pk}/change-plan/",
                                  {"plan": bigger.pk}, format="json")
    assert response.status_code == 200, response.content
    assert caller.client.get("/api/v1/invoices/")["X-RateLimit-Limit"] == "50"


@pytest.fixture
def redis_cache(settings):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(TEST_REDIS_URL).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on loopback")
    settings.CACHES = redis_caches(backend=WorkerDjangoRedisCache)
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_limits_are_counted_in_redis_when_it_is_the_cache(redis_cache):
    caller = api_customer(rate_limit_per_minute=2)
    statuses = [caller.client.get("/api/v1/invoices/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_a_request_refused_by_the_plan_is_counted_and_carries_the_headers():
    caller = api_customer(features=[], rate_limit_per_minute=5)
    refused = caller.client.get("/api/v1/invoices/")
    assert refused.status_code == 403
    assert (refused["X-RateLimit-Limit"], refused["X-RateLimit-Remaining"]) == ("5", "4")
    assert caller.client.get("/api/v1/entitlements/")["X-RateLimit-Remaining"] == "3"


@pytest.mark.django_db
def test_an_unlimited_window_is_left_out_and_the_tightest_limited_one_is_reported():
    caller = api_customer(rate_limit_per_minute=0, rate_limit_per_hour=0, api_calls_per_day=7)
    response = caller.client.get("/api/v1/invoices/")
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == ("7", "6")
    assert 1 <= int(response["X-RateLimit-Reset"]) <= 86400


@pytest.mark.django_db
def test_a_plan_without_limits_and_staff_get_no_rate_limit_headers():
    unlimited = api_customer(rate_limit_per_minute=0, rate_limit_per_hour=0, api_calls_per_day=0)
    for response in (unlimited.client.get("/api/v1/invoices/"), staff_client().get("/api/v1/invoices/")):
        assert response.status_code == 200
        assert not {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} & set(response.headers)
