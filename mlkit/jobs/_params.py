"""Notebook parameters: parsing (``-p``, ``-y``, ``-f``, ``--grid``) and validation.

Papermill escapes parameter *values* but pastes parameter *names* into the injected cell verbatim,
so a name like ``x; import os`` would run as code. Every name is checked here, with the values,
before any kernel starts or any file is written.
"""

from __future__ import annotations

import itertools
import keyword
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlkit.exceptions import JobArgumentError, JobError

__all__ = [
    "check_name",
    "check_value",
    "validate_parameters",
    "parse_value",
    "parse_assignments",
    "parse_yaml",
    "load_params_file",
    "parse_grid",
    "expand_grid",
    "is_number",
    "collect_parameters",
]

# The JSON data model: these round-trip exactly through papermill's Python translator and back
# through ``mlkit.jobs.record``. YAML adds dates, sets and binary; those are refused with advice.
_SCALARS = (type(None), bool, int, float, str)


def check_name(name: Any, *, what: str = "parameter") -> str:
    """Raise :class:`JobError` unless ``name`` is a Python identifier and not a keyword.

    Examples
    --------
    >>> check_name("learning_rate")
    'learning_rate'
    >>> check_name("class")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlkit.exceptions.JobArgumentError: parameter name 'class' is a Python keyword: ...
    """
    if not isinstance(name, str):
        raise JobArgumentError(
            f"{what} names must be strings, but got {name!r} ({type(name).__name__})"
        )
    if not name.isidentifier():
        raise JobArgumentError(
            f"{what} name {name!r} is not a Python identifier: use letters, digits and "
            "underscores, not starting with a digit (papermill pastes names into code as they are)"
        )
    if keyword.iskeyword(name):
        raise JobArgumentError(
            f"{what} name {name!r} is a Python keyword: rename the variable in the notebook's "
            f"parameters cell (e.g. {name}_)"
        )
    return name


def check_value(value: Any, where: str) -> None:
    """Raise :class:`JobError` unless ``value`` is made of JSON types (str keys in dicts).

    Examples
    --------
    >>> check_value({"a": [1, 2.5, None, True, "é"]}, "p")
    >>> check_value({1: "x"}, "p")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlkit.exceptions.JobArgumentError: p: dict keys must be strings, but got 1 (int); ...
    """
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_value(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise JobArgumentError(
                    f"{where}: dict keys must be strings, but got {key!r} ({type(key).__name__}); "
                    "quote the key in YAML"
                )
            check_value(item, f"{where}[{key!r}]")
        return
    hint = ""
    if type(value).__name__ in ("date", "datetime"):
        hint = f"; quote it in YAML ('{value}') to pass a string"
    raise JobArgumentError(
        f"{where} = {value!r} has type {type(value).__name__}, which cannot be passed to a "
        f"notebook exactly: use numbers, strings, booleans, null, lists or dicts{hint}"
    )


def _plain(value: Any) -> Any:
    """Tuples become lists, so what the notebook sees equals what was recorded."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def validate_parameters(
    parameters: Mapping[str, Any] | None, declared: Iterable[str] | None = None
) -> dict[str, Any]:
    """Check names and values; return a plain ``dict`` copy ready for papermill.

    Parameters
    ----------
    parameters : mapping
        Parameter name -> value.
    declared : iterable of str, optional
        Names found in the notebook's ``parameters`` cell. When given, an unknown name is an
        error (a typo would otherwise be injected and silently ignored).

    Examples
    --------
    >>> validate_parameters({"lr": 0.1, "layers": (64, 32)})
    {'lr': 0.1, 'layers': [64, 32]}
    >>> validate_parameters({"lr": 0.1}, declared=["learning_rate"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlkit.exceptions.JobArgumentError: unknown parameter 'lr': the notebook's parameters cell ...
    """
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise JobArgumentError(
            f"parameters must be a dict of name -> value, but got {parameters!r}"
        )
    out: dict[str, Any] = {}
    known = sorted(declared) if declared is not None else None
    for name, value in parameters.items():
        check_name(name)
        if known is not None and name not in known:
            raise JobArgumentError(
                f"unknown parameter {name!r}: the notebook's parameters cell declares "
                f"{', '.join(known) or 'nothing'}; fix the name or add it to that cell"
            )
        check_value(value, f"parameter {name!r}")
        out[name] = _plain(value)
    return out


def parse_value(text: str) -> Any:
    """Parse one ``-p NAME VALUE`` value with papermill's command-line rules.

    ``True``/``False``/``None``, then an int, then a float, else the text itself (papermill's
    ``_resolve_type``, re-stated here because ``papermill.cli`` probes stdin when imported).

    Examples
    --------
    >>> [parse_value(t) for t in ["3", "0.5", "1e-3", "True", "None", "abc", "nan"]]
    [3, 0.5, 0.001, True, None, 'abc', nan]
    """
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_assignments(pairs: Iterable[Sequence[str]] | None) -> dict[str, Any]:
    """``[("lr", "0.1"), ...]`` (from ``-p NAME VALUE``) -> ``{"lr": 0.1}``.

    Examples
    --------
    >>> parse_assignments([("lr", "0.1"), ("name", "run-1")])
    {'lr': 0.1, 'name': 'run-1'}
    """
    out: dict[str, Any] = {}
    for pair in pairs or ():
        if len(pair) != 2:
            raise JobArgumentError(f"-p expects NAME VALUE, but got {list(pair)!r}")
        name, raw = pair
        out[check_name(name)] = parse_value(raw)
    return out


def _yaml_load(text: str, source: str) -> dict[str, Any]:
    import yaml
    from yaml.constructor import SafeConstructor

    class _NoDates(yaml.SafeLoader):
        """SafeLoader without the implicit timestamp rule, like papermill's (dates stay text)."""

    _NoDates.yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _NoDates.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
    try:
        data = yaml.load(text, Loader=_NoDates)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise JobError(f"{source} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise JobError(
            f"{source} must hold a mapping of name: value, but holds a {type(data).__name__}"
        )
    return data


def parse_yaml(text: str) -> dict[str, Any]:
    """Parameters from a YAML string (``-y 'lr: 0.1'``), as papermill's ``-y``.

    Examples
    --------
    >>> parse_yaml("lr: 0.1\\nlayers: [64, 32]\\nday: 2024-01-01")
    {'lr': 0.1, 'layers': [64, 32], 'day': '2024-01-01'}
    """
    return _yaml_load(text, "the YAML parameters")


def load_params_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parameters from a YAML (or JSON) file (``-f params.yaml``).

    Examples
    --------
    >>> load_params_file("params.yaml")      # doctest: +SKIP
    {'lr': 0.1}
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobError(f"parameters file {str(p)!r} does not exist") from None
    except OSError as exc:
        raise JobError(f"cannot read parameters file {str(p)!r}: {exc.strerror}") from None
    return _yaml_load(text, f"parameters file {str(p)!r}")


def parse_grid(items: Iterable[str] | None) -> dict[str, list[Any]]:
    """``["lr=0.1,0.01", "depth=4,6"]`` (from ``--grid``) -> ``{"lr": [0.1, 0.01], ...}``.

    Each comma-separated value is parsed like a ``-p`` value. Pass values that contain commas
    through :func:`mlkit.jobs.sweep`'s ``grid`` dict instead.

    Examples
    --------
    >>> parse_grid(["lr=0.1,0.01", "depth=4,6", "opt=adam"])
    {'lr': [0.1, 0.01], 'depth': [4, 6], 'opt': ['adam']}
    """
    grid: dict[str, list[Any]] = {}
    for item in items or ():
        name, sep, raw = item.partition("=")
        if not sep or not raw:
            raise JobArgumentError(f"--grid expects NAME=V1,V2,..., but got {item!r}")
        name = check_name(name.strip())
        if name in grid:
            raise JobArgumentError(
                f"--grid names {name!r} twice: give all its values once, e.g. {item}"
            )
        grid[name] = [parse_value(v.strip()) for v in raw.split(",")]
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of a grid, in a stable order (last name varies fastest).

    Examples
    --------
    >>> expand_grid({"lr": [0.1, 0.01], "depth": [4, 6]})  # doctest: +NORMALIZE_WHITESPACE
    [{'lr': 0.1, 'depth': 4}, {'lr': 0.1, 'depth': 6},
     {'lr': 0.01, 'depth': 4}, {'lr': 0.01, 'depth': 6}]
    """
    if not isinstance(grid, Mapping) or not grid:
        raise JobArgumentError(f"a sweep needs a grid of name -> list of values, but got {grid!r}")
    names = list(grid)
    columns = []
    for name in names:
        values = grid[name]
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise JobArgumentError(
                f"grid values for {name!r} must be a list, but got {values!r}: "
                f"write {{{name!r}: [{values!r}]}} for a single value"
            )
        values = list(values)
        if not values:
            raise JobArgumentError(f"grid {name!r} has no values: give at least one")
        columns.append(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*columns)]


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool (what MLflow can take as a metric)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def collect_parameters(
    files: Iterable[str | os.PathLike[str]] = (),
    yamls: Iterable[str] = (),
    pairs: Iterable[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Merge command-line parameter sources in papermill's order: ``-f`` files, then ``-y``
    YAML strings, then ``-p`` pairs (later ones win).

    Examples
    --------
    >>> collect_parameters(yamls=["lr: 0.5\\ndepth: 3"], pairs=[("lr", "0.1")])
    {'lr': 0.1, 'depth': 3}
    """
    merged: dict[str, Any] = {}
    for path in files:
        merged.update(load_params_file(path))
    for text in yamls:
        merged.update(parse_yaml(text))
    merged.update(parse_assignments(pairs))
    return merged
