"""Source lines for user code that runs on a worker: tracebacks that show the user's own line.

cloudpickle pickles a function defined in a notebook or test module by value, and (since 3.1.3)
renames every code object it pickles to ``<dynamic-code>`` so payloads are deterministic. On the
worker the traceback of a failing objective then reads ``File "<dynamic-code>", line 83`` with
no source. The code keeps its name and line numbers, so the client records, before shipping,
where each code object came from and the lines of those files (:func:`capture`); the worker
formats tracebacks with that map (:func:`format_exc`). Nothing is rewritten in the user's code.

>>> def f():
...     raise ValueError("boom")
>>> sources = capture(f)
>>> sorted(sources.files) == sorted({f.__code__.co_filename})
True
"""

from __future__ import annotations

import linecache
import sys
import traceback
import types
from dataclasses import dataclass, field

__all__ = ["SourceMap", "capture", "format_exc", "format_exception"]

# The name cloudpickle >= 3.1.3 gives every code object it pickles by value.
DYNAMIC = "<dynamic-code>"
# Bounds: a payload must stay small even when an objective references a big module.
_MAX_FUNCTIONS = 200
_MAX_FILE_LINES = 20_000


@dataclass
class SourceMap:
    """Where the code objects of shipped functions came from, with the lines of those files."""

    origins: dict[tuple[str, int], str] = field(default_factory=dict)  # (name, first line) -> file
    files: dict[str, list[str]] = field(default_factory=dict)  # file -> its lines

    def filename(self, code: types.CodeType) -> str:
        if code.co_filename != DYNAMIC:
            return code.co_filename
        return self.origins.get((code.co_name, code.co_firstlineno), code.co_filename)

    def line(self, filename: str, lineno: int) -> str:
        lines = self.files.get(filename)
        if lines is None:
            return linecache.getline(filename, lineno).strip()
        return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _codes(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _functions(obj: object):
    """The plain functions reachable from ``obj``: itself, bound methods, partials, callables'
    ``__call__``, and the module-level functions its code refers to by name (helpers defined in
    the same notebook travel with it by value too)."""
    seen: set[int] = set()
    todo = [obj]
    while todo and len(seen) < _MAX_FUNCTIONS:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, types.MethodType):
            todo.append(cur.__func__)
        elif isinstance(cur, types.FunctionType):
            yield cur
            names = {n for c in _codes(cur.__code__) for n in c.co_names}
            todo.extend(
                v for n, v in cur.__globals__.items() if n in names and callable(v)
            )
            for cell in cur.__closure__ or ():
                try:
                    todo.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass
        elif hasattr(cur, "func") and callable(cur.func):  # functools.partial
            todo.append(cur.func)
        elif callable(cur):  # a callable object: its class's __call__
            call = vars(type(cur)).get("__call__")
            if isinstance(call, types.FunctionType):
                todo.append(call)


def capture(obj: object) -> SourceMap:
    """Record the origin and source lines of the user code in ``obj`` (run on the client).

    Functions from installed packages are skipped (workers have those files themselves).

    Parameters
    ----------
    obj
        A function, bound method, ``functools.partial`` or callable object.

    Returns
    -------
    SourceMap
        Small and picklable; ship it with the function.

    Examples
    --------
    >>> def objective(trial):
    ...     return 1 / 0
    >>> capture(objective).origins[("objective", objective.__code__.co_firstlineno)] == (
    ...     objective.__code__.co_filename)
    True
    """
    out = SourceMap()
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    for fn in _functions(obj):
        filename = fn.__code__.co_filename
        if filename == DYNAMIC or filename.startswith(prefixes):
            continue
        for code in _codes(fn.__code__):
            out.origins[(code.co_name, code.co_firstlineno)] = filename
        if filename not in out.files:
            lines = linecache.getlines(filename, fn.__globals__)
            if lines and len(lines) <= _MAX_FILE_LINES:
                out.files[filename] = [line.rstrip("\n") for line in lines]
    return out


def format_exception(exc: BaseException, sources: SourceMap | None) -> str:
    """Format ``exc`` and its traceback like :func:`traceback.format_exception`, showing the
    user's file names and lines for frames whose code cloudpickle renamed."""
    if sources is None:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    parts: list[str] = []
    chain = _chain(exc)
    for i, link in enumerate(chain):
        if i:
            parts.append(_CAUSE if chain[i].__cause__ is chain[i - 1] else _CONTEXT)
        frames = traceback.StackSummary.from_list(
            [
                traceback.FrameSummary(
                    sources.filename(frame.f_code),
                    lineno,
                    frame.f_code.co_name,
                    line=sources.line(sources.filename(frame.f_code), lineno),
                )
                for frame, lineno in traceback.walk_tb(link.__traceback__)
            ]
        )
        block = ["Traceback (most recent call last):\n", *frames.format()] if frames else []
        block += traceback.format_exception_only(type(link), link)
        parts.append("".join(block))
    return "".join(parts)


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.insert(0, cur)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return out


def format_exc(sources: SourceMap | None) -> str:
    """:func:`format_exception` of the exception being handled (like ``traceback.format_exc``)."""
    exc = sys.exc_info()[1]
    return "" if exc is None else format_exception(exc, sources)
