"""Who may talk to the dashboard, decided without I/O (docs/reference.md, "web").

* Every request needs the token: the session cookie (HttpOnly, SameSite=Strict) that the
  printed URL trades it for, or `Authorization: Bearer TOKEN` for scripts.
* A state change is a POST, and its `Origin` must be one of the dashboard's own origins.
  A browser sends `Origin` with every POST, so a cookie-carried POST without one is
  refused; a script using the bearer header sends none and may omit it (a browser cannot
  set that header on another site's behalf without a preflight we never grant).
* "Own" is a fixed set computed when the server starts from what it listens on, never
  from the request's `Host` header (which DNS rebinding lets a hostile page choose): the
  loopback names for a loopback listener, the given host for a specific one, and for a
  wildcard listener (`0.0.0.0`, `::`) the machine's names and addresses; plus the exact
  address a connection arrived at, which is the server's own by definition.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

COOKIE_PREFIX = "mosaic_fleet_web_"

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Sent with every response, 401s included."""

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 (recognised, not bound to)


def cookie_name(port: int) -> str:
    """Cookies ignore ports: two dashboards on one host (two homes) must not overwrite each
    other's session, so the port is in the name."""
    return f"{COOKIE_PREFIX}{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """A host as it appears in a URL: IPv6 addresses in brackets."""
    bare = host.strip("[]")
    try:
        if ipaddress.ip_address(bare).version == 6:
            return f"[{bare}]"
    except ValueError:
        pass
    return host.lower()


def origin(scheme: str, host: str, port: int) -> str:
    default = {"http": 80, "https": 443}[scheme]
    suffix = "" if port == default else f":{port}"
    return f"{scheme}://{url_host(host)}{suffix}"


@dataclass(frozen=True)
class Origins:
    scheme: str
    port: int
    hosts: frozenset[str]

    def allows(self, given: str | None, local_address: str | None = None) -> bool:
        """Whether an `Origin` header names this dashboard (`local_address`: where the
        connection arrived, also own)."""
        if not given or given == "null":
            return False
        own = {origin(self.scheme, h, self.port) for h in self.hosts}
        if local_address:
            own.add(origin(self.scheme, local_address, self.port))
        return given.strip().lower() in own


def own_origins(scheme: str, bind: str, port: int, machine: Iterable[str] = ()) -> Origins:
    """The origins of a dashboard listening on `bind`:`port`; `machine`: this machine's
    names and addresses (used for a wildcard listener)."""
    if bind in WILDCARDS:
        hosts = {*LOOPBACK_NAMES, *machine}
    elif is_loopback(bind):
        hosts = {*LOOPBACK_NAMES, bind}
    else:
        hosts = {bind}
    return Origins(scheme, port, frozenset(url_host(h) for h in hosts if h))


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


SAFE_METHODS = frozenset({"GET", "HEAD"})


def post_allowed(via_cookie: bool, given_origin: str | None, origins: Origins,
                 local_address: str | None) -> bool:  # fmt: skip
    """A state-changing request from an authenticated client: refused unless its Origin is
    ours, or it came with the bearer header and no Origin at all (a script)."""
    if given_origin is None and not via_cookie:
        return True
    return origins.allows(given_origin, local_address)
