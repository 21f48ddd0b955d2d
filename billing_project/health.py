from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """Liveness and database reachability for load balancers and operators."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        database = {"status": "ok", "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"; the detail goes in the body
        database = {"status": "error", "vendor": connection.vendor, "error": str(exc)[:200]}
    healthy = database["status"] == "ok"
    return JsonResponse({"status": "ok" if healthy else "degraded", "database": database},
                        status=200 if healthy else 503)
