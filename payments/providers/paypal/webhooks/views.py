from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.exceptions import WebhookRejected
from payments.providers.paypal.webhooks.services import paypal_event_receive


@csrf_exempt  # PayPal cannot send a CSRF token; the signature on the raw body authenticates it instead.
@require_POST
def paypal_webhook(request: HttpRequest) -> JsonResponse:
    try:
        received = paypal_event_receive(body=request.body, headers=request.headers)
    except WebhookRejected as exc:
        return JsonResponse({"error": exc.code, "message": exc.message}, status=exc.http_status)
    # 200 once the event is stored: a worker applies it (status "pending" until then); a handler that
    # fails marks it failed for a replay (admin action or `paypal_events replay`); PayPal's own
    # redeliveries would only be duplicates.
    return JsonResponse({"id": received.event.event_id, "status": received.event.status,
                         "duplicate": received.duplicate})
