"""What a customer may buy through Checkout by itself, and where Checkout may send its browser back.

The Checkout services in payments.stripe_services take any price and any redirect URL, because staff
and the back office call them. A customer's program must not choose either: it names a credit pack from
the `CREDIT_PACKS` catalog (priced in the customer's currency) and redirect URLs on the hosts of
`CHECKOUT_REDIRECT_HOSTS` (anything else would make us an open redirect).
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from core.audit import Actor
from core.exceptions import InvalidOperation
from payments.stripe_services import CheckoutStart, checkout_credit_pack_start
from subscriptions.models import Customer


@dataclass(frozen=True)
class CreditPack:
    code: str
    credits: int
    # Minor units of `currency`.
    amount: int
    currency: str


def credit_pack_list(*, currency: str) -> list[CreditPack]:
    """The packs sold in `currency`, smallest first."""
    packs = [
        CreditPack(code=code, credits=int(spec["credits"]), amount=int(spec["prices"][currency]), currency=currency)
        for code, spec in settings.CREDIT_PACKS.items()
        if currency in spec.get("prices", {})
    ]
    return sorted(packs, key=lambda pack: (pack.credits, pack.code))


def credit_pack_get(*, code: str, currency: str) -> CreditPack:
    for pack in credit_pack_list(currency=currency):
        if pack.code == code:
            return pack
    choices = ", ".join(pack.code for pack in credit_pack_list(currency=currency)) or "none"
    raise InvalidOperation(f"No credit pack {code!r} is sold in {currency}.", code="unknown_credit_pack",
                           extra={"fields": {"pack": [f"Choose one of: {choices}."]}})


def _redirect_url(*, field: str, given: str | None, default: str) -> str:
    if not given:
        if not default:
            raise InvalidOperation(f"Give {field}: no default is configured.", code="invalid",
                                   extra={"fields": {field: ["This field is required."]}})
        return default
    parts = urlsplit(given)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or host not in settings.CHECKOUT_REDIRECT_HOSTS:
        raise InvalidOperation(f"{field} must be an http(s) URL on an allowed host.", code="redirect_not_allowed",
                               extra={"fields": {field: [f"Host {host or '(none)'} is not allowed; ask for it "
                                                         "to be added to CHECKOUT_REDIRECT_HOSTS."]}})
    return given


def checkout_redirect_urls(*, success_url: str | None, cancel_url: str | None) -> tuple[str, str]:
    """The (success, cancel) URLs of a customer's Checkout: its own on allowed hosts, else the defaults."""
    return (_redirect_url(field="success_url", given=success_url, default=settings.CHECKOUT_SUCCESS_URL),
            _redirect_url(field="cancel_url", given=cancel_url, default=settings.CHECKOUT_CANCEL_URL))


def checkout_credit_pack_buy(*, customer: Customer, pack_code: str, actor: Actor, success_url: str,
                             cancel_url: str) -> tuple[CreditPack, CheckoutStart]:
    """Checkout for a catalog pack at its price in the customer's currency."""
    pack = credit_pack_get(code=pack_code, currency=customer.currency)
    start = checkout_credit_pack_start(customer=customer, credits=pack.credits, amount=pack.amount, actor=actor,
                                       success_url=success_url, cancel_url=cancel_url)
    return pack, start
