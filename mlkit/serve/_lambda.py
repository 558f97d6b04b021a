"""An AWS Lambda container-image build context for a model (no AWS account or Docker needed).

:func:`lambda_package` writes::

    DIR/Dockerfile          the image: the model's Python, its requirements, the handler
    DIR/requirements.txt    -r model/requirements.txt (the model's own) + what the handler needs
    DIR/model/              the MLflow model (resolved through the registry, pinned to a version)
    DIR/mlkit/              mlkit's own (pure-Python) package: the handler runs mlkit's scoring
                            app, the one ``serve.start`` runs (see mlkit.serve._lambda_app)
    DIR/lambda_handler.py   ``handler = create_handler(...)``: the image's CMD
    DIR/mlkit-lambda.json   what was packaged (model URI, version, Python, limits)

Two bases. ``base="python"`` (default): ``python:X.Y-slim`` (Debian) with AWS's
runtime interface client ``awslambdaric`` as the entry point, X.Y being the Python the model was
saved with. ``base="aws"``: AWS's own ``public.ecr.aws/lambda/python:X.Y`` (runtime client and
emulator built in). AWS's 3.10 and 3.11 images run Amazon Linux 2 (glibc 2.26), where current
numpy / pandas / pyarrow / scikit-learn releases have no wheels (they are manylinux_2_28), so pip
would fall back to older releases or fail building from source; the Python base has no such
limit, hence the default.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from mlkit import _args
from mlkit.exceptions import ServeArgumentError, ServeError

__all__ = ["lambda_package", "PYTHON_VERSIONS", "BASES"]

PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13")
BASES = ("python", "aws")
HANDLER = "lambda_handler.py"
_LAMBDA_MAX_PAYLOAD = 6 * 1000 * 1000  # Lambda's own limit for a synchronous request

_DOCKERFILE = {
    "python": """\
# AWS Lambda container image for {model}, written by `mlkit serve lambda` (mlkit {mlkit}).
# Build and push:  docker build --platform linux/amd64 -t {tag} .   (then to ECR)
# The handler answers API Gateway REST (v1), HTTP API (v2), Function URL and ALB events with
# MLflow's scoring app: POST /invocations (or POST /), GET /ping.
FROM python:{python}-slim
WORKDIR /var/task
COPY model/ model/
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY mlkit/ mlkit/
COPY {handler} .
ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["{module}.handler"]
""",
    "aws": """\
# AWS Lambda container image for {model}, written by `mlkit serve lambda` (mlkit {mlkit}).
# Build and push:  docker build --platform linux/amd64 -t {tag} .   (then to ECR)
# The handler answers API Gateway REST (v1), HTTP API (v2), Function URL and ALB events with
# MLflow's scoring app: POST /invocations (or POST /), GET /ping.
FROM public.ecr.aws/lambda/python:{python}
COPY model/ ${{LAMBDA_TASK_ROOT}}/model/
COPY requirements.txt ${{LAMBDA_TASK_ROOT}}/
RUN pip install --no-cache-dir -r ${{LAMBDA_TASK_ROOT}}/requirements.txt
COPY mlkit/ ${{LAMBDA_TASK_ROOT}}/mlkit/
COPY {handler} ${{LAMBDA_TASK_ROOT}}/
CMD ["{module}.handler"]
""",
}

_HANDLER = '''\
"""AWS Lambda entry point for {model}, written by `mlkit serve lambda` (mlkit {mlkit}).

The model is loaded once per container (the cold start); every invocation is answered by
MLflow's scoring app (signature enforced) through Mangum: see mlkit/serve/_lambda_app.py.
"""

import os

from mlkit.serve._lambda_app import create_handler

handler = create_handler(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "model"),
    max_body_bytes={max_body_bytes},
)
'''


def _check_options(python: Any, base: Any, max_body_bytes: Any) -> None:
    _args.one_of("base", base, BASES, error=ServeArgumentError)
    if python is not None:
        _args.one_of("python", python, PYTHON_VERSIONS, error=ServeArgumentError,
                     what_to_do="the Lambda Python versions mlkit packages for")
    _args.integer("max_body_bytes", max_body_bytes, low=1024, high=_LAMBDA_MAX_PAYLOAD,
                  rule=f"an integer from 1024 to {_LAMBDA_MAX_PAYLOAD}", error=ServeArgumentError,
                  what_to_do="Lambda's own request limit")


def _copy_model(ref: Any, dest: Path, tracking_uri: str) -> None:
    """The model's files into ``dest`` (a local folder copied, anything else downloaded)."""
    from mlkit.serve._models import local_folder

    folder = local_folder(ref)
    if folder is not None:
        shutil.copytree(folder, dest)
    else:
        import mlflow

        scratch = dest.with_name(".download")
        try:
            got = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=ref.location, dst_path=str(scratch), tracking_uri=tracking_uri))
        except Exception as exc:  # noqa: BLE001 - any store's failure is reported the same way
            raise ServeError(f"cannot download the model {ref.uri!r} from {ref.location}: "
                             f"{type(exc).__name__}: {exc}") from None
        shutil.move(str(got), dest)
        shutil.rmtree(scratch, ignore_errors=True)
    if not (dest / "MLmodel").is_file():
        raise ServeError(f"{ref.uri!r} ({ref.location}) holds no MLmodel file: it is not an "
                         "MLflow model")


def _model_python(model_dir: Path) -> str:
    """Major.minor of the Python the model was saved with (python_env.yaml), else ours."""
    import yaml

    env = model_dir / "python_env.yaml"
    if env.is_file():
        text = str((yaml.safe_load(env.read_text()) or {}).get("python", ""))
        m = re.match(r"^(\d+)\.(\d+)", text)
        if m:
            return f"{m.group(1)}.{m.group(2)}"
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _requirements(model_dir: Path, base: str) -> str:
    from importlib.metadata import requires, version

    lines = ["# written by `mlkit serve lambda`: the model's own requirements, then what the",
             "# handler needs (mlkit's core, mangum; awslambdaric on the python base)",
             "-r model/requirements.txt"]
    model_reqs = (model_dir / "requirements.txt").read_text() \
        if (model_dir / "requirements.txt").is_file() else ""
    if not re.search(r"^\s*mlflow(-skinny)?\s*([=<>~!\[;]|$)", model_reqs, re.M):
        lines.append(f"mlflow=={version('mlflow')}")  # the model was checked with this one
    lines += [r for r in requires("mlkit") or [] if "extra" not in r]
    lines.append(f"mangum=={version('mangum')}")
    if base == "python":
        lines.append("awslambdaric>=2.2,<5")
    return "\n".join(lines) + "\n"


def lambda_package(model: Any, out_dir: str | Path, *, max_body_bytes: int = 0,
                   python: str | None = None, base: str = "python") -> Path:
    """Write an AWS Lambda container-image build context that serves ``model``.

    The image runs mlkit's scoring app (MLflow's pyfunc scoring app, signature enforced, with
    mlkit's error handling) behind Mangum, so API Gateway REST (v1), HTTP API (v2), Lambda
    Function URL and ALB events are answered as mlkit's local server answers the same request.
    Bad input is refused before anything is written; the context is assembled in a temporary
    folder beside ``out_dir`` and renamed into place, so a failure leaves nothing behind.

    Parameters
    ----------
    model : str or pathlib.Path
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH`` or a local model
        folder. An alias is pinned to the version it points at now.
    out_dir : str or pathlib.Path
        Folder to create; it must not exist yet (or be empty).
    max_body_bytes : int
        Larger request bodies get HTTP 413 (default: just under Lambda's 6 MB request limit).
    python : str, optional
        Python of the image (``"3.10"`` .. ``"3.13"``); default: the one the model was saved with.
    base : {"python", "aws"}
        ``python:X.Y-slim`` + awslambdaric (default), or ``public.ecr.aws/lambda/python:X.Y``
        (see the module docstring for why the first is the default).

    Returns
    -------
    pathlib.Path
        ``out_dir``. Build it with ``docker build --platform linux/amd64 -t NAME out_dir``.

    Examples
    --------
    >>> mlkit.serve.lambda_package("models:/iris@champion", "build/iris-lambda")  # doctest: +SKIP
    PosixPath('/work/build/iris-lambda')
    """
    from importlib.metadata import version

    import mlkit
    from mlkit import track
    from mlkit.serve._docker import check_out_dir, staged
    from mlkit.serve._lambda_app import DEFAULT_MAX_BODY_BYTES
    from mlkit.serve._models import default_name, resolve

    max_body_bytes = max_body_bytes or DEFAULT_MAX_BODY_BYTES
    _check_options(python, base, max_body_bytes)
    out = check_out_dir(out_dir)
    tracking_uri = track.tracking_uri()
    ref = resolve(model, tracking_uri)
    with staged(out) as tmp:
        _copy_model(ref, tmp / "model", tracking_uri)
        py = python or _model_python(tmp / "model")
        if py not in PYTHON_VERSIONS:
            raise ServeError(f"the model was saved with Python {py}, which mlkit does not "
                             f"package for Lambda: pass python= one of {list(PYTHON_VERSIONS)}")
        shutil.copytree(Path(mlkit.__file__).parent, tmp / "mlkit",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (tmp / "requirements.txt").write_text(_requirements(tmp / "model", base))
        fields = {"model": ref.pinned, "mlkit": mlkit.__version__, "python": py,
                  "handler": HANDLER, "module": HANDLER[:-3],
                  "tag": default_name(ref.pinned).lower() + "-lambda",
                  "max_body_bytes": max_body_bytes}
        (tmp / "Dockerfile").write_text(_DOCKERFILE[base].format(**fields))
        (tmp / HANDLER).write_text(_HANDLER.format(**fields))
        manifest = {"model": ref.uri, "pinned": ref.pinned, "version": ref.version,
                    "python": py, "base": base, "max_body_bytes": max_body_bytes,
                    "handler": f"{HANDLER[:-3]}.handler", "mlkit": mlkit.__version__,
                    "mlflow": version("mlflow"), "mangum": version("mangum")}
        (tmp / "mlkit-lambda.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out
