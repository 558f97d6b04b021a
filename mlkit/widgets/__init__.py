"""Notebook views of mlkit objects. Widgets draw state the API exposes; they never compute it.

Three display levels, as in dask/distributed: a live ipywidgets widget in a kernel, static HTML
elsewhere in Jupyter, plain text in a terminal. Every widget's display bundle also carries the
static HTML and text (see :mod:`mlkit._display`), and finished work leaves a static snapshot.
"""

from __future__ import annotations

from mlkit._display import display_live, in_kernel

__all__ = ["in_kernel", "display_live"]
