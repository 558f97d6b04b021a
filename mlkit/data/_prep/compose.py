"""Composers: ColumnTransformer (column-wise, branches fit in lockstep: one pass for all) and
Pipeline (sequential steps), plus ``make_preprocessor`` for the usual numeric/categorical split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mlkit import _args
from mlkit._imports import require
from mlkit.data._prep.base import Passes, Transformer, is_dask
from mlkit.exceptions import ConfigArgumentError, ConfigError, DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import pandas as pd
    import pandas.api.types as pt
    from sklearn.base import clone
else:
    pd = require("pandas")
    pt = require("pandas.api.types")
    clone = require("sklearn.base").clone

__all__ = ["ColumnTransformer", "Pipeline", "make_preprocessor"]


def _empty_like(x: Any) -> pd.DataFrame:
    return x._meta if is_dask(x) else x.iloc[:0]


def _lockstep(gens: dict[Any, Passes], inputs: dict[Any, Callable[[pd.DataFrame], Any]]) -> Passes:
    """Run several fit generators together: each pass evaluates every unfinished child's
    function on the same partition, so the data is read once per pass for all of them."""
    funcs = {}
    for key, gen in gens.items():
        try:
            funcs[key] = next(gen)
        except StopIteration:
            pass
    while funcs:
        current = dict(funcs)

        def partial(pdf: pd.DataFrame, current: dict = current) -> dict:
            return {key: f(inputs[key](pdf)) for key, f in current.items()}

        results = yield partial
        funcs = {}
        for key in current:
            try:
                funcs[key] = gens[key].send([r[key] for r in results])
            except StopIteration:
                pass


def _selector(columns: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    cols = list(columns)

    def select(pdf: pd.DataFrame) -> pd.DataFrame:
        return pdf[cols]

    return select


class ColumnTransformer(Transformer):
    """Apply a transformer to each group of columns and put the results side by side.

    Like ``sklearn.compose.ColumnTransformer``; all branches fit together, so a composer of
    one-pass transformers reads the data once (``fit_passes_ == 1``).

    Parameters
    ----------
    transformers : list of (name, transformer, columns)
        ``transformer`` is an mlkit transformer, a :class:`Pipeline`, ``"passthrough"`` or
        ``"drop"``; ``columns`` a column name, a list of names, or a callable that receives the
        input's ``dtypes`` and returns names.
    remainder : {"drop", "passthrough"}
        What happens to the columns no branch names (passed through last, unchanged).
    verbose_feature_names_out : bool
        Prefix output names with ``<branch name>__`` (sklearn's default) or not (default here).

    Examples
    --------
    >>> from mlkit.data import ColumnTransformer, Pipeline, SimpleImputer, StandardScaler, \\
    ...     OneHotEncoder
    >>> prep = ColumnTransformer([
    ...     ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
    ...      ["f0", "f1"]),
    ...     ("cat", OneHotEncoder(), ["c0"]),
    ... ])
    >>> features = prep.fit(ddf).transform(ddf)         # doctest: +SKIP
    """

    def __init__(
        self,
        transformers: Sequence[tuple[str, Any, Any]],
        remainder: str = "drop",
        verbose_feature_names_out: bool = False,
    ) -> None:
        self.transformers = transformers
        self.remainder = remainder
        self.verbose_feature_names_out = verbose_feature_names_out

    def _start_fit(self, x: Any) -> None:
        super()._start_fit(x)
        if self.remainder not in ("drop", "passthrough"):
            raise ConfigError(
                "ColumnTransformer: remainder must be 'drop' or 'passthrough', "
                f"but got {self.remainder!r}"
            )
        names = set()
        fitted: list[tuple[str, Any, list[str]]] = []
        used: list[str] = []
        for entry in self.transformers:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 3):
                raise ConfigError(
                    f"ColumnTransformer: each entry must be (name, transformer, columns), "
                    f"but got {entry!r}"
                )
            name, est, columns = entry
            if name in names:
                raise ConfigError(f"ColumnTransformer: branch name {name!r} is used twice")
            names.add(name)
            if callable(columns):
                columns = columns(x.dtypes)
            cols = [columns] if isinstance(columns, str) else [str(c) for c in columns]
            missing = [c for c in cols if c not in x.columns]
            if missing:
                raise DataError(
                    f"ColumnTransformer: branch {name!r} names column(s) {missing} that the data "
                    f"lacks; it has {[str(c) for c in x.columns]}"
                )
            used += cols
            if isinstance(est, str):
                if est not in ("drop", "passthrough"):
                    raise ConfigError(
                        f"ColumnTransformer: branch {name!r} is {est!r}; use a transformer, "
                        "'passthrough' or 'drop'"
                    )
                fitted.append((name, est, cols))
                continue
            if not isinstance(est, Transformer):
                raise ConfigError(
                    f"ColumnTransformer: branch {name!r} holds {type(est).__name__}; use mlkit "
                    "transformers (they fit on dask and pandas alike)"
                )
            est = clone(est)
            est._start_fit(x[cols])
            fitted.append((name, est, cols))
        if self.remainder == "passthrough":
            rest = [str(c) for c in x.columns if str(c) not in set(used)]
            if rest:
                fitted.append(("remainder", "passthrough", rest))
        self.transformers_ = fitted

    def _passes(self) -> Passes:
        gens = {i: est._passes() for i, (_, est, _) in enumerate(self.transformers_)
                if not isinstance(est, str)}
        inputs = {i: _selector(cols) for i, (_, _, cols) in enumerate(self.transformers_)}
        yield from _lockstep(gens, inputs)
        out = self._names_out()
        dup = sorted({n for n in out if out.count(n) > 1})
        if dup:
            raise ConfigError(
                f"ColumnTransformer: output column(s) {dup} would appear twice; pass "
                "verbose_feature_names_out=True or rename the branches' columns"
            )

    def _required(self) -> list[str]:
        # Only what the branches use: a served model receives the raw feature columns, not the
        # target or ids the training frame also held.
        used = {c for _, est, cols in self.transformers_ if est != "drop" for c in cols}
        return [c for c in self.feature_names_in_ if c in used]

    def _names_out(self) -> list[str]:
        names = []
        for name, est, cols in self.transformers_:
            if est == "drop":
                continue
            inner = cols if isinstance(est, str) else list(est.get_feature_names_out())
            names += [f"{name}__{n}" if self.verbose_feature_names_out else n for n in inner]
        return names

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for _, est, cols in self.transformers_:
            if est == "drop":
                continue
            part = pdf[cols] if isinstance(est, str) else est._transform_frame(pdf[cols])
            parts.append(part)
        if not parts:
            return pd.DataFrame(index=pdf.index)
        out = pd.concat(parts, axis=1)
        out.columns = self._names_out()
        return out


class Pipeline(Transformer):
    """Transformers applied one after the other (each fits on the output of the previous).

    A pipeline of ``k`` one-pass steps needs ``k`` passes, except that a one-pass
    :class:`SimpleImputer` (mean, most frequent, constant) and the scaler, encoder or log
    transform after it fit together in one pass. Inside a :class:`ColumnTransformer` the
    branches' pipelines advance together, so the usual impute -> scale / impute -> one-hot
    preprocessing reads the data once.

    Parameters
    ----------
    steps : list of (name, transformer)

    Examples
    --------
    >>> from mlkit.data import Pipeline, SimpleImputer, StandardScaler
    >>> num = Pipeline([("impute", SimpleImputer(strategy="median")),
    ...                 ("scale", StandardScaler())])
    >>> num.fit_transform(ddf[["f0", "f1"]])       # doctest: +SKIP
    """

    def __init__(self, steps: Sequence[tuple[str, Any]]) -> None:
        self.steps = steps

    def _start_fit(self, x: Any) -> None:
        super()._start_fit(x)
        if not self.steps:
            raise ConfigError("Pipeline: steps is empty; give at least one (name, transformer)")
        fitted = []
        for entry in self.steps:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
                raise ConfigError(f"Pipeline: each step must be (name, transformer), got {entry!r}")
            name, est = entry
            if not isinstance(est, Transformer):
                raise ConfigError(
                    f"Pipeline: step {name!r} holds {type(est).__name__}; use mlkit transformers"
                )
            fitted.append((name, clone(est)))
        self.steps_ = fitted
        self._meta_in = _empty_like(x)[list(self.feature_names_in_)]

    def _passes(self) -> Passes:
        from mlkit.data._prep.impute import SimpleImputer

        meta = self._meta_in
        del self._meta_in
        done: list[Transformer] = []
        steps = [est for _, est in self.steps_]
        i = 0
        while i < len(steps):
            est = steps[i]
            est._start_fit(meta)
            prefix = list(done)

            def before(pdf: pd.DataFrame, prefix: list = prefix) -> pd.DataFrame:
                for step in prefix:
                    pdf = step._transform_frame(pdf)
                return pdf

            nxt = steps[i + 1] if i + 1 < len(steps) else None
            if (isinstance(est, SimpleImputer) and est.strategy != "median"
                    and nxt is not None and nxt._fits_through_imputer):
                # impute -> scale/encode in ONE pass: the next step sees the data before
                # imputation and folds the fill values in afterwards (exact, see base).
                nxt._start_fit(est._meta_out(meta))
                nxt._fill_from = est
                try:
                    yield from _lockstep({0: est._passes(), 1: nxt._passes()},
                                         {0: before, 1: before})
                finally:
                    del nxt._fill_from
                done += [est, nxt]
                meta = nxt._transform_frame(est._transform_frame(meta))
                i += 2
                continue
            yield from _lockstep({0: est._passes()}, {0: before})
            done.append(est)
            meta = est._transform_frame(meta)
            i += 1

    def _names_out(self) -> list[str]:
        return list(self.steps_[-1][1].get_feature_names_out())

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        for _, est in self.steps_:
            pdf = est._transform_frame(pdf)
        return pdf

    @property
    def named_steps(self) -> dict[str, Any]:
        """Fitted steps by name (the unfitted ones before ``fit``)."""
        return dict(getattr(self, "steps_", self.steps))


def make_preprocessor(
    df: Any,
    *,
    exclude: Sequence[str] = ("target",),
    numeric: str = "standard",
    categorical: str = "onehot",
    impute: bool = True,
) -> ColumnTransformer:
    """The usual preprocessing, chosen from the columns' dtypes (not fitted yet).

    Numeric columns: impute the mean (if ``impute``) then ``numeric`` scaling; text/category
    columns: impute the most frequent value then ``categorical`` encoding.

    Parameters
    ----------
    df : pandas or dask DataFrame
        Only its dtypes are read.
    exclude : sequence of str
        Columns left out (the target; ids).
    numeric : {"standard", "minmax", "none"}
    categorical : {"onehot", "ordinal"}
    impute : bool

    Examples
    --------
    >>> import mlkit
    >>> prep = mlkit.data.make_preprocessor(ddf, exclude=["target"])   # doctest: +SKIP
    >>> X = prep.fit(ddf).transform(ddf)                              # doctest: +SKIP
    """
    from mlkit.data._prep.encode import OneHotEncoder, OrdinalEncoder
    from mlkit.data._prep.impute import SimpleImputer
    from mlkit.data._prep.scale import MinMaxScaler, StandardScaler

    scalers = {"standard": StandardScaler, "minmax": MinMaxScaler, "none": None}
    encoders = {"onehot": OneHotEncoder, "ordinal": OrdinalEncoder}
    _args.one_of("numeric", numeric, scalers, error=ConfigArgumentError)
    _args.one_of("categorical", categorical, encoders, error=ConfigArgumentError)
    missing = [c for c in exclude if c not in df.columns]
    if missing:
        raise DataError(f"exclude names column(s) {missing} that the data lacks")
    num_cols, cat_cols = [], []
    for col, dtype in df.dtypes.items():
        if col in exclude:
            continue
        if pt.is_bool_dtype(dtype) or pt.is_numeric_dtype(dtype):
            num_cols.append(str(col))
        else:
            cat_cols.append(str(col))
    branches: list[tuple[str, Any, Any]] = []
    if num_cols:
        steps = [("impute", SimpleImputer(strategy="mean"))] if impute else []
        scaler = scalers[numeric]
        if scaler is not None:
            steps.append(("scale", scaler()))
        branches.append(("num", Pipeline(steps) if steps else "passthrough", num_cols))
    if cat_cols:
        steps = [("impute", SimpleImputer(strategy="most_frequent"))] if impute else []
        steps.append(("encode", encoders[categorical]()))
        branches.append(("cat", Pipeline(steps), cat_cols))
    if not branches:
        raise DataError(f"no columns left to preprocess after excluding {list(exclude)}")
    return ColumnTransformer(branches)


