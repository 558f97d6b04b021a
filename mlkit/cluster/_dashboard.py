"""The dashboard link users click: Dask's own formatting, through jupyter-server-proxy when present.

Dask formats the link from the ``distributed.dashboard.link`` setting (``{scheme}://{host}:{port}
/status`` by default; JupyterHub deployments set e.g. ``{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/
status``). A link to ``127.0.0.1:PORT`` only works in a browser on the kernel's machine, so when
jupyter-server-proxy is installed beside the kernel (JupyterHub, a remote Jupyter server) and the
setting was left at Dask's default, the link goes through the proxy instead. A setting the user
or the deployment made always wins.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any
from urllib.parse import urlsplit

__all__ = ["dashboard_link", "server_proxy_installed", "link_template_is_default"]

_KEY = "distributed.dashboard.link"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def server_proxy_installed() -> bool:
    """True if jupyter-server-proxy can be imported in this environment."""
    return importlib.util.find_spec("jupyter_server_proxy") is not None


def link_template_is_default() -> bool:
    """True while ``distributed.dashboard.link`` still holds distributed's shipped default."""
    import dask.config
    import distributed  # noqa: F401 - registers distributed's defaults with dask.config

    shipped = None
    for defaults in dask.config.defaults:
        shipped = defaults.get("distributed", {}).get("dashboard", {}).get("link", shipped)
    return dask.config.get(_KEY) == shipped


def proxy_template() -> str:
    """The jupyter-server-proxy path template, under JupyterHub's prefix when there is one.

    Examples
    --------
    >>> os.environ.pop("JUPYTERHUB_SERVICE_PREFIX", None) and None
    >>> proxy_template()
    '/proxy/{port}/status'
    """
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return prefix.rstrip("/") + "/proxy/{port}/status"


def dashboard_link(client: Any) -> str:
    """The dashboard URL for ``client``'s scheduler, as a notebook user should open it.

    Examples
    --------
    >>> dashboard_link(mlkit.cluster.get_client())   # doctest: +SKIP
    'http://127.0.0.1:8787/status'
    """
    link = client.dashboard_link  # distributed's formatting of distributed.dashboard.link
    if not (server_proxy_installed() and link_template_is_default()):
        return link
    parts = urlsplit(link)
    if parts.hostname not in _LOOPBACK or parts.port is None:
        return link  # jupyter-server-proxy only reaches the kernel's own machine by default
    import dask.config
    from distributed.utils import format_dashboard_link

    with dask.config.set({_KEY: proxy_template()}):
        return format_dashboard_link(parts.hostname, parts.port)
