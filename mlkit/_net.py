"""Ports: the one place mlkit asks the operating system for a free TCP port.

Used by the scoring servers, the gateway's replica pools, the replicas started on workers and
torch's rendezvous on rank 0. ``distributed.utils.open_port`` does the same for IPv4 only and
costs the gateway and replica processes an import of distributed (about 2 s on a 2-core machine)
they otherwise never pay; these are the same few lines, IPv6-aware (a worker's host may be
``::1`` or another IPv6 address).

Examples
--------
>>> port = free_port("127.0.0.1")
>>> 0 < port < 65536
True
>>> port_free("127.0.0.1", port)
True
"""

from __future__ import annotations

import socket

__all__ = ["free_port", "port_free"]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str) -> int:
    """A TCP port free on ``host``'s interface right now (another process may take it later).

    Parameters
    ----------
    host : str
        The address to bind: ``127.0.0.1``, a host's own address, or an IPv6 address.

    Returns
    -------
    int
        The port number.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host.strip("[]"), 0))
        return int(s.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound now (False when something listens there).

    Parameters
    ----------
    host : str
        The address to bind.
    port : int
        The port to try.

    Returns
    -------
    bool
        True when a bind succeeded (the socket is closed again at once).
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        try:
            s.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True
