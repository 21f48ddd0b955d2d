"""A Django system check of PAYMENT_PROVIDERS: a wrong entry stops `manage.py check`, `migrate` and
`runserver` with one clear line, instead of answering 500 at the first payment."""

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

from payments.providers.base import Capability, PaymentProvider


def _rail_errors(path: str, index: int, claimed: dict[str, str]) -> list[Error]:
    where = f"PAYMENT_PROVIDERS[{index}] ({path!r})"
    try:
        rail = import_string(path)()
    except Exception as exc:  # an import error, a missing class or a constructor that fails: all one story
        return [Error(f"{where} cannot be loaded: {exc}", id="payments.E001")]
    if not isinstance(rail, PaymentProvider) or not rail.code or not rail.codes:
        return [Error(f"{where} does not implement payments.providers.PaymentProvider (code, codes, "
                      "capabilities and the contract's methods).", id="payments.E002")]
    errors = []
    unknown = [capability for capability in rail.capabilities if not isinstance(capability, Capability)]
    if unknown:
        errors.append(Error(f"{where} declares unknown capabilities {unknown!r}.", id="payments.E003"))
    taken = sorted(code for code in rail.codes if code in claimed)
    if taken:
        owners = sorted({claimed[code] for code in taken})
        errors.append(Error(f"{where} answers for {', '.join(taken)}, already answered by {', '.join(owners)}: "
                            "a payment method has one rail.", id="payments.E004"))
    errors += _webhook_view_errors(rail, where)
    for code in rail.codes:
        claimed.setdefault(code, path)
    return errors


def _webhook_view_errors(rail: PaymentProvider, where: str) -> list[Error]:
    """The view a rail mounts at /webhooks/<code>/ must import (payments/providers/urls.py)."""
    view = getattr(rail, "webhook_view", "")
    if not view:
        return []
    try:
        import_string(view)
    except ImportError as exc:
        return [Error(f"{where} names a webhook view {view!r} that cannot be imported: {exc}", id="payments.E005")]
    return []


@register()
def payment_providers_check(app_configs=None, **kwargs) -> list[Error]:
    paths = settings.PAYMENT_PROVIDERS
    if isinstance(paths, str) or not all(isinstance(path, str) for path in paths):
        return [Error("PAYMENT_PROVIDERS must be a list of dotted paths.", id="payments.E000")]
    claimed: dict[str, str] = {}
    return [error for index, path in enumerate(paths) for error in _rail_errors(path, index, claimed)]
