from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.exceptions import WebhookRejected
from payments.providers.lemonsqueezy.webhooks.services import lemonsqueezy_event_receive


@csrf_exempt  # Lemon Squeezy cannot send a CSRF token; the signature on the raw body authenticates it instead.
@require_POST
def lemonsqueezy_webhook(request: HttpRequest) -> JsonResponse:
    try:
        received = lemonsqueezy_event_receive(body=request.body, headers=request.headers)
    except WebhookRejected as exc:
        return JsonResponse({"error": exc.code, "message": exc.message}, status=exc.http_status)
    # 200 once stored: a worker applies it; a failing handler marks it failed for a replay.
    return JsonResponse({"id": received.event.event_id, "status": received.event.status,
                         "duplicate": received.duplicate})
