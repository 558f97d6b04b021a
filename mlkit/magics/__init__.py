"""The ``%mlscale`` magics (``%load_ext mlkit``).

Declared with ``IPython.core.magic_arguments`` in the manner of ipyparallel's magics: every
subcommand only parses its arguments and calls one mlkit API function. User mistakes, and every
:class:`~mlkit.exceptions.MlkitError`, surface as IPython's ``UsageError``: one line, no traceback
wall, the kernel and any running cluster left intact.
"""

from __future__ import annotations

import importlib
import shlex
import textwrap
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import parse_argstring

from mlkit.exceptions import MlkitError
from mlkit.magics._subcommands import SUBCOMMANDS, plain_text, subcommand

__all__ = ["MLScaleMagics", "load_ipython_extension", "unload_ipython_extension", "subcommand"]

# One module per capability; each registers its subcommands on import.
_MODULES = ("cluster", "serve", "jobs", "tune", "track", "data", "monitor")


def _load_subcommands() -> None:
    for name in _MODULES:
        importlib.import_module(f"mlkit.magics.{name}")


@magics_class
class MLScaleMagics(Magics):
    """``%mlscale SUBCOMMAND [options]`` and ``%%mlscale SUBCOMMAND [options]``.

    ::

        In [1]: %load_ext mlkit
        In [2]: %mlscale up --workers 2
        In [3]: %mlscale status
        In [4]: %mlscale help
    """

    @line_cell_magic
    def mlscale(self, line: str, cell: str | None = None) -> Any:
        """Scale machine learning from the notebook. ``%mlscale help`` lists the subcommands."""
        _load_subcommands()
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%mlscale: cannot parse {line!r}: {exc}") from None
        if not tokens:
            raise UsageError("%mlscale needs a subcommand: " + self._choices())
        name, rest = tokens[0], line.strip()[len(tokens[0]) :].strip()
        if name in ("help", "-h", "--help"):
            return self._help(rest)
        sub = SUBCOMMANDS.get(name)
        if sub is None:
            raise UsageError(
                f"%mlscale: unknown subcommand {name!r}; choose one of: " + self._choices()
            )
        if cell is not None and not sub.cell:
            raise UsageError(f"%%mlscale {name} is a line magic: use %mlscale {name} (one %)")
        # magic_arguments' parser raises UsageError on bad options, naming the valid ones.
        args = parse_argstring(sub.func, rest)
        try:
            return sub.func(self, args, cell)
        except MlkitError as exc:
            raise UsageError(f"%mlscale {name}: {exc}") from None

    def _choices(self) -> str:
        return ", ".join(["help", *sorted(SUBCOMMANDS)])

    def _help(self, rest: str) -> None:
        topic = rest.split()[0] if rest.split() else None
        if topic:
            sub = SUBCOMMANDS.get(topic)
            if sub is None:
                raise UsageError(
                    f"%mlscale help: unknown subcommand {topic!r}; choose one of: "
                    + self._choices()
                )
            # magic_arguments attaches the parser to the function
            print(plain_text(sub.func.parser.format_help()))  # type: ignore[attr-defined]
            return
        width = max(len(n) for n in SUBCOMMANDS)
        lines = ["%mlscale subcommands (use `%mlscale help NAME` for options):"]
        for n in sorted(SUBCOMMANDS):
            sub = SUBCOMMANDS[n]
            usage = f"{'%%' if sub.cell else '%'}mlscale {n}"
            lead = f"  {usage.ljust(width + 10)}  "
            # Whole summaries, wrapped under their column rather than cut.
            lines.append(
                textwrap.fill(
                    sub.summary, width=100, initial_indent=lead, subsequent_indent=" " * len(lead)
                )
            )
        print("\n".join(lines))


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%mlscale`` on ``ipython``."""
    _load_subcommands()
    ipython.register_magics(MLScaleMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove ``%mlscale`` from ``ipython``."""
    ipython.magics_manager.magics["line"].pop("mlscale", None)
    ipython.magics_manager.magics["cell"].pop("mlscale", None)
