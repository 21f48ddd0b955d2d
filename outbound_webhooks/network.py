"""The one place an outbound webhook touches the network: where a URL may point, and the signed POST.

Every address a host resolves to is checked (private, loopback, link-local, reserved, multicast and
shared addresses are refused unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES), and the connection is
made to the checked address itself, so a DNS answer that changes between the check and the connect
(DNS rebinding) cannot steer it elsewhere. TLS still verifies the certificate against the host name.
"""

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.utils.translation import gettext as _

# Characters of a receiver's answer kept in the delivery log: enough to see why it refused.
RESPONSE_EXCERPT_CHARS = 500

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeWebhookUrl(Exception):
    """The URL is not one webhooks may be sent to (scheme, host, or an address that is not public)."""


@dataclass(frozen=True)
class PostOutcome:
    response_code: int | None
    response_excerpt: str
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` with the endpoint's secret (docs/webhooks-outbound.md)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_url_check_syntax(*, url: str) -> None:
    """What can be said of a URL without resolving it: http(s), a host, and no literal forbidden address."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise UnsafeWebhookUrl(_("Not a valid URL: %(error)s.") % {"error": exc}) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeWebhookUrl(_("Webhook URLs are http:// or https:// with a host."))
    if parts.username or parts.password:
        raise UnsafeWebhookUrl(_("Webhook URLs carry no credentials; the signature authenticates the sender."))
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return
    if not address_allowed(address=literal):
        raise UnsafeWebhookUrl(_("%(address)s is not a public address.") % {"address": literal})


def address_allowed(*, address: IpAddress) -> bool:
    if settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def webhook_url_resolve(*, url: str) -> IpAddress:
    """The address to connect to: every address the host resolves to must be allowed, the first is used."""
    webhook_url_check_syntax(url=url)
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or _default_port(parts.scheme),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeWebhookUrl(_("%(host)s does not resolve: %(error)s")
                               % {"host": parts.hostname, "error": exc}) from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [str(a) for a in addresses if not address_allowed(address=a)]
    if not addresses or refused:
        raise UnsafeWebhookUrl(_("%(host)s resolves to addresses that are not public: %(addresses)s")
                               % {"host": parts.hostname, "addresses": ", ".join(refused)})
    return addresses[0]


def webhook_post(*, url: str, body: bytes, headers: dict[str, str]) -> PostOutcome:
    """POST `body` to `url` at its checked address; never raises for the receiver's or the network's faults."""
    started = time.monotonic()
    try:
        address = webhook_url_resolve(url=url)
        response = _post_to_address(url=url, address=address, body=body, headers=headers)
    except UnsafeWebhookUrl as exc:
        return PostOutcome(None, "", f"refused: {exc}"[:500], _elapsed_ms(started))
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return PostOutcome(None, "", f"{type(exc).__name__}: {exc}"[:500], _elapsed_ms(started))
    excerpt = response.data[:RESPONSE_EXCERPT_CHARS * 4].decode("utf-8", "replace")[:RESPONSE_EXCERPT_CHARS]
    return PostOutcome(response.status, excerpt, "", _elapsed_ms(started))


def _post_to_address(*, url: str, address: IpAddress, body: bytes, headers: dict[str, str]):
    parts = urlsplit(url)
    port = parts.port or _default_port(parts.scheme)
    timeout = urllib3.Timeout(total=settings.OUTBOUND_WEBHOOKS_TIMEOUT_SECONDS)
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(str(address), port, timeout=timeout, retries=False,
                                           server_hostname=parts.hostname, assert_hostname=parts.hostname,
                                           cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(str(address), port, timeout=timeout, retries=False)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    try:
        return pool.urlopen("POST", path, body=body, headers={**headers, "Host": host_header},
                            redirect=False, retries=False)
    finally:
        pool.close()


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
