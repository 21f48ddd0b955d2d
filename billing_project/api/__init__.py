"""The public API's shared machinery: error shape, pagination, plan limits, idempotency, the router.

It sits above the four apps (it reads the customer's plan from `subscriptions` and the router mounts
every app's views); the apps' `api/` modules build on it.
"""
