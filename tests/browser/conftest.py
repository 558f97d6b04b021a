"""Fixtures of the real-browser suite: one JupyterLab server for the session, one headless
Chromium (Debian's /usr/bin/chromium through Playwright), one notebook page per test module.

A module names its notebook in ``NOTEBOOK``; its tests run in file order on that page, as a user
works down a notebook. On a failure the page's screenshot, its console log and the server's log
are kept under ``.browser-artifacts/`` (the failure report prints the paths).

Missing chromium or playwright is a failure with the command that fixes it, never a skip: the
suite is part of ``make test`` (``make browser-deps`` installs chromium).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.browser._lab import Notebook, empty_notebook
from tests.browser._server import start_lab

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MLKIT_BROWSER_ARTIFACTS", ROOT / ".browser-artifacts"))
CHROMIUM = os.environ.get("MLKIT_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium as root on a CI box with no GPU and no network: nothing it would fetch or
# sync on its own, no sandbox (root cannot use it).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Package scope: Playwright's sync API keeps an asyncio loop marked running in the main thread
# while it is open; the tests after this package must run in a plain main thread, as user code
# does (jupyter_core's run_sync, for one, takes another path when a loop is running).
@pytest.fixture(scope="package")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "tests/browser needs the playwright package: `make install` (it is in the dev extra)",
            pytrace=False,
        )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"tests/browser needs Debian's chromium at {CHROMIUM}: run `make browser-deps` "
            "(as root: apt-get install -y chromium). Never `playwright install`.",
            pytrace=False,
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="package")
def lab(tmp_path_factory):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this run's failures are kept
    server = start_lab(tmp_path_factory.mktemp("jupyterlab"))
    print(f"\nJupyterLab {server.url} (folder {server.root.parent})")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nb(request, browser, lab):
    """The module's notebook, open in a fresh page; its kernel is shut down at the end."""
    name = request.module.NOTEBOOK
    empty_notebook(lab.root / name)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    notebook = Notebook(page, lab, name)
    notebook.console = []  # type: ignore[attr-defined]
    page.on("console", lambda m: notebook.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: notebook.console.append(f"pageerror: {e}"))
    yield notebook
    try:
        lab.shutdown_kernels_of(name)
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    notebook = item.funcargs.get("nb") if hasattr(item, "funcargs") else None
    if not isinstance(notebook, Notebook):
        return
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    try:
        notebook.page.screenshot(path=str(folder / "page.png"), full_page=True)
        saved.append("page.png")
    except Exception as exc:  # a crashed page must not hide the test's own failure
        saved.append(f"(no screenshot: {exc})")
    (folder / "console.log").write_text("\n".join(getattr(notebook, "console", [])))
    (folder / "jupyter-lab.log").write_text(notebook.server.log())
    if notebook.path.exists():
        shutil.copy(notebook.path, folder / notebook.path.name)
    rep.sections.append(
        ("browser artifacts", f"{folder}: {', '.join(saved)}, console.log, jupyter-lab.log")
    )
