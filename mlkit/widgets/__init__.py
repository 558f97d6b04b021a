"""Notebook views of mlkit objects. Widgets draw state the API exposes; they never compute it.

Three display levels, as in dask/distributed: a live ipywidgets widget in a kernel, static HTML
elsewhere in Jupyter, plain text in a terminal.
"""

from __future__ import annotations

from typing import Any

__all__ = ["in_kernel", "display_live"]


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where widgets can render), False in a terminal or script.

    Examples
    --------
    >>> in_kernel()
    False
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def display_live(obj: Any) -> None:
    """Display ``obj``'s live widget in a kernel, its HTML elsewhere in IPython, else print it.

    ``obj`` needs ``widget()``, ``_repr_html_()`` and ``__str__``.
    """
    from mlkit._imports import available

    if not in_kernel():
        print(obj)
        return
    from IPython.display import HTML, display

    if available("ipywidgets"):
        display(obj.widget())
    else:
        display(HTML(obj._repr_html_()))
