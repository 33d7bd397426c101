"""Feeds and pages are fetched from public addresses only (no SSRF).

A feed URL, a page URL or a redirect may name a host that resolves to this machine
(loopback), the local network (private ranges), link-local addresses (cloud metadata at
169.254.169.254) or other non-global ranges. Fetching those would let whoever controls a feed
or a DNS record read internal services. So the connection itself is guarded: the host name is
resolved once, every address it resolves to is checked, and the connection goes to a checked
address (no second lookup that a rebinding DNS server could answer differently).

A source's ``allow_private`` (``sources: [{kind: feed, url: ..., allow_private: [...]}]``)
lists what it may reach all the same: host names, addresses or networks
(``intranet.example``, ``127.0.0.1``, ``10.0.0.0/8``).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from digest.errors import SourceError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> IP addresses


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class BlockedAddress(SourceError):
    """The host resolves to an address that is not public and not allow-listed."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be fetched from: public ones, and what ``allow`` lists."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[Network, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_config(
        cls, allow_private: Iterable[str], resolver: Resolver = system_resolver
    ) -> AddressPolicy:
        hosts, networks = set(), []
        for entry in allow_private:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), resolver)

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` a connection may go to; refuses if any is blocked (a
        name that resolves to a public and a private address is refused as a whole)."""
        name = host.lower().rstrip(".").strip("[]")
        resolved = self.resolver(name, port)
        if name in self.allow_hosts:
            return list(resolved)
        for text in resolved:
            address = _address(text)
            if not _is_public(address) and not any(address in net for net in self.allow_networks):
                shown = host if host.strip("[]") == text else f"{host} resolves to {text}, which"
                raise BlockedAddress(
                    f"{shown} is {_kind(address)}: not fetched (list it in the source's "
                    "allow_private to allow it)"
                )
        return list(resolved)


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # a scope id ("fe80::1%eth0")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def _kind(address: Address) -> str:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast:
        return "a multicast address"
    return "not a public address"


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses the policy allows. TLS still
    verifies the certificate against the host name of the URL (httpcore passes it)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.policy.addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host} has no address")


def guarded_transport(
    policy: AddressPolicy, verify: ssl.SSLContext | bool = True
) -> httpx.HTTPTransport:
    """An httpx transport whose connections pass :class:`AddressPolicy`."""
    transport = httpx.HTTPTransport(verify=verify, trust_env=False)
    # httpx does not take a network backend; its connection pool (httpcore) does.
    transport._pool._network_backend = GuardedBackend(policy)
    return transport
