"""Which rails are installed, and the one a payment, a charge or a checkout goes through.

Built from `settings.PAYMENT_PROVIDERS` (dotted paths of provider classes, in order of preference). The
instances are kept per settings value; whether a rail is configured (its keys set) is asked on every
look-up, because keys are settings too and may change at run time (and do in tests).
"""

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from core.exceptions import PaymentProviderUnavailable
from payments.providers.base import Capability, PaymentProvider


@lru_cache(maxsize=4)
def _installed(paths: tuple[str, ...]) -> tuple[PaymentProvider, ...]:
    return tuple(import_string(path)() for path in paths)


def providers_installed() -> tuple[PaymentProvider, ...]:
    """Every installed rail, configured or not, in order of preference."""
    return _installed(tuple(settings.PAYMENT_PROVIDERS))


def provider_installed_for(code: str) -> PaymentProvider | None:
    """The installed rail that answers for `code`, configured or not; None when no rail does."""
    return next((provider for provider in providers_installed() if code in provider.codes), None)


def _switched_off(provider: PaymentProvider) -> bool:
    """A rail declared as a module that staff switched off (`manage.py modules disable <code>`): the
    registry answers as if it were not installed, so nothing charges, refunds or checks out through it."""
    # Imported here: this module is loaded while the apps are (payment URLs and checks), before the
    # modules app's models can be.
    from modules.registry import module_definitions
    from modules.selectors import module_enabled

    return provider.code in module_definitions() and not module_enabled(code=provider.code)


def provider_for(code: str) -> PaymentProvider:
    """The rail that answers for `code` (a Payment.method such as "stripe" or "cash").

    Raises PaymentProviderUnavailable (503) when no installed rail answers for it, or the one that does
    is not configured.
    """
    provider = provider_installed_for(code)
    if provider is not None:
        if _switched_off(provider):
            raise PaymentProviderUnavailable(_("The %(rail)s payment rail is switched off (modules).")
                                             % {"rail": provider.code},
                                             code="payment_provider_disabled", extra={"provider": provider.code})
        if not provider.is_configured():
            raise PaymentProviderUnavailable(provider.unavailable_message, extra={"provider": provider.code})
        return provider
    raise PaymentProviderUnavailable(_("No payment provider for %(code)r is installed.") % {"code": code},
                                     code="payment_provider_unknown", extra={"provider": code})


def providers_with(capability: Capability) -> list[PaymentProvider]:
    """The configured rails offering `capability`, in order of preference."""
    return [provider for provider in providers_installed()
            if capability in provider.capabilities and provider.is_configured() and not _switched_off(provider)]


def provider_with(capability: Capability) -> PaymentProvider:
    """The preferred configured rail offering `capability`, or PaymentProviderUnavailable (503) saying
    which installed rail would offer it once configured."""
    configured = providers_with(capability)
    if configured:
        return configured[0]
    for provider in providers_installed():
        if capability in provider.capabilities:
            raise PaymentProviderUnavailable(provider.unavailable_message, extra={"provider": provider.code})
    raise PaymentProviderUnavailable(_("No installed payment provider offers %(capability)s.")
                                     % {"capability": capability.value},
                                     code="capability_unavailable", extra={"capability": capability.value})
