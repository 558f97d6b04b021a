"""Subcommand registry for ``%mlscale``.

Each capability declares its subcommands in its own module (``mlkit/magics/<area>.py``) with
:func:`subcommand` stacked on IPython's ``magic_arguments`` decorators. The subcommand body parses
and calls exactly one API function; it holds no logic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Subcommand", "SUBCOMMANDS", "subcommand", "positive_int"]


@dataclass(frozen=True)
class Subcommand:
    name: str
    func: Callable[..., Any]
    cell: bool  # True when the subcommand uses the cell body (%%mlscale NAME)
    summary: str


SUBCOMMANDS: dict[str, Subcommand] = {}


def _summary(doc: str) -> str:
    """First sentence line of a docstring, skipping the usage block magic_arguments prepends."""
    for line in doc.splitlines():
        text = line.strip()
        if text and text != "::" and not line.startswith((" ", "\t")) and not text.startswith("%"):
            return text
    return ""


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
