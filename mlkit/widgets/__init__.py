"""Notebook views of mlkit objects. Widgets draw state the API exposes; they never compute it.

Three display levels, as in dask/distributed: a live ipywidgets widget in a kernel, static HTML
elsewhere in Jupyter, plain text in a terminal. Every widget's display bundle also carries the
static HTML and text (see :mod:`mlkit._display`), and finished work leaves a static snapshot.
"""

from __future__ import annotations

from typing import Any

from mlkit._display import in_kernel

__all__ = ["in_kernel", "display_live"]


def display_live(obj: Any) -> None:
    """Display ``obj``'s live widget in a kernel, its HTML elsewhere in IPython, else print it.

    ``obj`` needs ``widget()``, ``_repr_html_()`` and ``__str__``.
    """
    from mlkit._display import can_draw_widgets, mimebundle

    if not in_kernel():
        print(obj)
        return
    from IPython.display import display

    if can_draw_widgets():
        display(obj.widget())  # the widget's bundle carries its static HTML and text too
    else:
        display(mimebundle(obj._repr_html_(), str(obj)), raw=True)
