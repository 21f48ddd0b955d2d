"""The webhook endpoints of the installed rails, one per rail at /webhooks/<rail code>/ (the root URLconf
mounts this under /webhooks/). Built once, when the URLconf loads, from PAYMENT_PROVIDERS."""

from django.urls import URLPattern, path
from django.utils.module_loading import import_string

from payments.providers.registry import providers_installed


def _webhook_paths() -> list[URLPattern]:
    try:
        rails = providers_installed()
    except Exception:
        # A wrong PAYMENT_PROVIDERS entry is the system check's to report in one line (payments.E001); the
        # URLconf still loads, because Django's own URL check imports it first and would crash instead.
        return []
    return [path(f"{rail.code}/", import_string(rail.webhook_view), name=f"{rail.code}-webhook")
            # A rail written against the Protocol alone (not ProviderBase) may not declare one.
            for rail in rails if getattr(rail, "webhook_view", "")]


urlpatterns = _webhook_paths()
