"""The public API's router: it mounts every app's views (composition root; nothing imports it).

The shared machinery lives below the apps: the error shape, pagination, schema helpers, fields,
parsers and filters in core.api; who the caller is and what their plan allows in subscriptions.api.
"""
