from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.exceptions import WebhookRejected
from payments.providers.stripe.webhooks.services import stripe_event_receive


@csrf_exempt  # Stripe cannot send a CSRF token; the signature on the raw body authenticates it instead.
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        received = stripe_event_receive(payload=request.body,
                                        signature_header=request.headers.get("Stripe-Signature", ""))
    except WebhookRejected as exc:
        return JsonResponse({"error": exc.code, "message": exc.message}, status=exc.http_status)
    # 200 once the event is stored: a worker applies it (status "pending" until then); a handler that
    # fails marks it failed, and `stripe_events replay` (or the admin's reprocess action) retries it;
    # Stripe's own retries would only be duplicates.
    return JsonResponse({"id": received.event.event_id, "status": received.event.status,
                         "duplicate": received.duplicate})
