"""Print one line that sums up every stage of ``make test`` from its JUnit XML reports.

Usage: ``python tests/_summary.py NAME=report.xml [NAME=report.xml ...]``; exits 1 if any stage
failed or left no report (a stage that crashed before writing one counts as failed).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def stage(name: str, report: Path) -> tuple[str, bool]:
    if not report.exists():
        return f"{name}: NO REPORT (the stage crashed before finishing)", False
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors",
                                                                "skipped")}
    seconds = sum(float(s.get("time", 0)) for s in suites)
    passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    bad = total["failures"] + total["errors"]
    text = (f"{name}: {passed} passed, {total['failures']} failed, {total['errors']} errors, "
            f"{total['skipped']} skipped in {seconds:.0f} s")
    return text, bad == 0 and total["tests"] > 0


def main(args: list[str]) -> int:
    results = [stage(n, Path(p)) for n, p in (a.split("=", 1) for a in args)]
    ok = all(good for _, good in results)
    print(("PASSED" if ok else "FAILED") + " | " + " | ".join(t for t, _ in results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
