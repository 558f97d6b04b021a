"""Subcommand registry for ``%mlscale``.

Each capability declares its subcommands in its own module (``mlkit/magics/<area>.py``) with
:func:`subcommand` stacked on IPython's ``magic_arguments`` decorators. The subcommand body parses
and calls exactly one API function; it holds no logic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Subcommand", "SUBCOMMANDS", "subcommand", "positive_int", "plain_text"]


@dataclass(frozen=True)
class Subcommand:
    name: str
    func: Callable[..., Any]
    cell: bool  # True when the subcommand uses the cell body (%%mlscale NAME)
    summary: str


SUBCOMMANDS: dict[str, Subcommand] = {}


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :func:`mlkit.up` -> mlkit.up
_LITERAL = re.compile(r"``([^`]+)``")  # ``objective`` -> objective


def plain_text(text: str) -> str:
    """Drop reStructuredText markup (``literals``, :role:`targets`) for a terminal or cell.

    Examples
    --------
    >>> plain_text("Tune the ``objective``; see :func:`~mlkit.tune.tune`.")
    'Tune the objective; see mlkit.tune.tune.'
    """
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))


def _summary(doc: str) -> str:
    r"""The docstring's first paragraph as one plain-text line.

    ``magic_arguments`` prepends a ``::`` usage block (indented lines); the summary is the first
    unindented paragraph after it, joined across its lines so no sentence is cut.

    Examples
    --------
    >>> _summary("::\n\n  %x [-n N]\n\nDo a thing (rows,\ncolumns) with ``y``.\n\nMore.")
    'Do a thing (rows, columns) with y.'
    """
    paragraph: list[str] = []
    for line in doc.splitlines():
        text = line.strip()
        indented = line.startswith((" ", "\t"))
        if not paragraph:
            if text and text != "::" and not indented and not text.startswith("%"):
                paragraph.append(text)
            continue
        if not text or text == "::" or indented:
            break
        paragraph.append(text)
    return plain_text(" ".join(paragraph))


def subcommand(
    name: str, *, cell: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(ctx, args, cell)`` as ``%mlscale NAME``.

    ``ctx`` is the :class:`~mlkit.magics.MLScaleMagics` instance (``ctx.shell`` is the
    InteractiveShell), ``args`` the parsed ``argparse.Namespace``, ``cell`` the cell body or None.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        parser = getattr(func, "parser", None)
        if parser is not None:
            # magic_arguments names the parser after the function; users type `%mlscale NAME`.
            parser.prog = f"mlscale {name}"  # the help formatter adds the leading %
        SUBCOMMANDS[name] = Subcommand(name, func, cell, _summary(func.__doc__ or ""))
        return func

    return register


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts: a clear message that names the bad value.

    Examples
    --------
    >>> positive_int("3")
    3
    """
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
