"""Driving one JupyterLab notebook page the way a user does: type into the last cell, press
Shift+Enter, press toolbar buttons and menu items, read what the page shows.

Reads use ``textContent`` (JupyterLab 4 skips rendering off-screen cells, which empties
``innerText``); every wait polls a condition through :func:`tests._wait.wait_for` or Playwright's
own waiting, never a fixed sleep.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tests._wait import wait_for
from tests.browser._server import LabServer

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
TOOLBAR = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar"
STDERR = '[data-mime-type="application/vnd.jupyter.stderr"]'
WIDGET_ERROR = "Error displaying widget"
_DONE_PROMPT = re.compile(r"^\[\d+\]:$")


def empty_notebook(path: Path) -> None:
    """Write an empty notebook with the venv's kernel named, as JupyterLab's "New" would."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "first",
                "metadata": {},
                "outputs": [],
                "source": [],
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


@dataclass
class Cell:
    """One code cell of the page, by its position."""

    nb: Notebook
    index: int

    @property
    def locator(self):
        return self.nb.page.locator(f"{NOTEBOOK} .jp-Cell").nth(self.index)

    def prompt(self) -> str:
        return (self.locator.locator(".jp-InputPrompt").text_content() or "").strip()

    def done(self) -> bool:
        return bool(_DONE_PROMPT.match(self.prompt()))

    def running(self) -> bool:
        return self.prompt() == "[*]:"

    def wait_done(self, timeout: float = 120.0) -> Cell:
        wait_for(
            self.done, timeout=timeout, what=f"cell {self.index} to finish ({self.source()!r})"
        )
        return self

    def source(self) -> str:
        return (self.locator.locator(".cm-content").text_content() or "")[:80]

    def output_text(self) -> str:
        return self.locator.locator(".jp-OutputArea").text_content() or ""

    def stdout(self) -> str:
        parts = self.locator.locator(
            '[data-mime-type="application/vnd.jupyter.stdout"]'
        ).all_text_contents()
        return "".join(parts)

    def stderr(self) -> str:
        return "".join(self.locator.locator(STDERR).all_text_contents())

    def widget(self, text: str):
        """The outermost ipywidgets box in this cell's output whose text contains ``text``."""
        return self.locator.locator(".jp-OutputArea-output > .jupyter-widgets").filter(
            has_text=text
        )


class Notebook:
    """A notebook open in a JupyterLab page, with its kernel.

    Examples
    --------
    >>> nb = Notebook(page, server, "demo.ipynb"); nb.open()      # doctest: +SKIP
    >>> nb.run("print(1 + 1)").stdout()                          # doctest: +SKIP
    '2\\n'
    """

    def __init__(self, page, server: LabServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.path = server.root / name

    # -- opening ------------------------------------------------------------------------------
    def open(self, timeout: float = 120.0) -> float:
        """Go to the notebook's URL and wait until its kernel is idle; returns the seconds."""
        t0 = time.monotonic()
        self.page.goto(self.server.lab_url(self.name))
        self.wait_kernel_idle(timeout)
        return time.monotonic() - t0

    def reload(self, timeout: float = 120.0) -> float:
        t0 = time.monotonic()
        self.page.reload()
        self.wait_kernel_idle(timeout)
        return time.monotonic() - t0

    def kernel_status(self) -> str:
        ind = self.page.locator(f"{TOOLBAR} .jp-Notebook-ExecutionIndicator")
        name = self.page.locator(f"{TOOLBAR} .jp-Toolbar-kernelName")
        if not ind.count() or not name.count():
            return "no page"
        if (name.first.text_content() or "").strip() == "No Kernel":
            return "no kernel"  # the indicator reads "idle" before any kernel is attached
        return ind.first.get_attribute("data-status") or "?"

    def wait_kernel_idle(self, timeout: float = 120.0) -> None:
        def idle() -> bool:
            if self.kernel_status() != "idle":
                return False
            sessions = [s for s in self.server.sessions() if s.get("path") == self.name]
            return bool(sessions) and sessions[0]["kernel"]["execution_state"] == "idle"

        wait_for(idle, timeout=timeout, what=f"{self.name}'s kernel to be idle")

    # -- cells --------------------------------------------------------------------------------
    def cells(self):
        return self.page.locator(f"{NOTEBOOK} .jp-Cell")

    def run(self, code: str, *, wait: bool = True, timeout: float = 120.0) -> Cell:
        """Type ``code`` into the last (empty) cell and press Shift+Enter, as a user does."""
        cells = self.cells()
        index = cells.count() - 1
        last = cells.nth(index)
        if (last.locator(".cm-content").text_content() or "").strip():
            # The last cell has code: add a fresh cell below it ("+" in the toolbar).
            last.click()
            self.page.locator(f"{TOOLBAR} [data-command='notebook:insert-cell-below']").click()
            index += 1
            last = cells.nth(index)
        editor = last.locator(".cm-content")
        editor.click()
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Shift+Enter")
        cell = Cell(self, index)
        # Shift+Enter on the last cell adds the next, empty one: the page has taken the run.
        wait_for(lambda: cells.count() > index + 1, timeout=30, what="a new cell below")
        if wait:
            cell.wait_done(timeout)
        return cell

    def value(self, expr: str, timeout: float = 120.0) -> str:
        """Run ``print(expr)`` in a new cell and return what it printed (stripped)."""
        cell = self.run(f"print({expr})", timeout=timeout)
        out = cell.stdout().strip()
        if not out:
            raise AssertionError(f"print({expr}) printed nothing: {cell.output_text()[-2000:]}")
        return out

    # -- toolbar and menus --------------------------------------------------------------------
    def toolbar(self, command: str):
        return self.page.locator(f"{TOOLBAR} [data-command='{command}']")

    def interrupt(self) -> None:
        """Press the toolbar's Interrupt button (the square)."""
        self.toolbar("notebook:interrupt-kernel").click()

    def save(self, timeout: float = 60.0) -> dict:
        """Press the toolbar's Save button; returns the notebook as written to disk."""
        before = self.path.stat().st_mtime_ns
        self.toolbar("docmanager:save").click()

        def written() -> dict | None:
            dirty = self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").count()
            if dirty or self.path.stat().st_mtime_ns == before:
                return None
            return json.loads(self.path.read_text())  # a half-written file raises: not yet

        return wait_for(written, timeout=timeout, what=f"{self.name} saved to disk")

    def shutdown_kernel(self, timeout: float = 60.0) -> None:
        """Kernel menu -> Shut Down Kernel, then wait until the server has no kernel for it."""
        self.page.locator(".lm-MenuBar-item", has_text="Kernel").click()
        self.page.locator(".lm-Menu-item[data-command='kernelmenu:shutdown']").click()

        def gone() -> bool:
            dialog = self.page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count():  # "Shut down the kernel?" when JupyterLab asks
                dialog.first.click()
                return False
            return not [
                s for s in self.server.sessions() if s.get("path") == self.name and s.get("kernel")
            ]

        wait_for(gone, timeout=timeout, what=f"{self.name}'s kernel shut down")

    def text(self) -> str:
        return self.page.locator(NOTEBOOK).text_content() or ""
