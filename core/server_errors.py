"""Django's handler500, except for a database pool that stayed exhausted: that is 503, not a bug.

A request that waited DATABASE_POOL_TIMEOUT seconds for a connection (every one of this process's
DATABASE_POOL_MAX_SIZE busy) is refused with 503 and Retry-After, in the API's error shape, so clients
and load balancers retry instead of reporting a server error. Every other uncaught error stays a 500.
"""

import sys

from django.http import JsonResponse
from django.views import defaults
from psycopg_pool import PoolTimeout

RETRY_AFTER_SECONDS = 1


def _caused_by_pool_timeout(error: BaseException | None) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, PoolTimeout):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def server_error(request, *args, **kwargs):
    # Django calls handler500 inside its `except` block, so the uncaught error is the one being handled.
    if _caused_by_pool_timeout(sys.exc_info()[1]):
        return JsonResponse(
            {"error": {"type": "api_error", "code": "database_busy", "fields": {},
                       "message": "Every database connection is busy; retry shortly."}},
            status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return defaults.server_error(request, *args, **kwargs)
