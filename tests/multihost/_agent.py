"""Runs on a test host: executes code sent as JSON lines in one namespace, like a kernel.

Replies go to the original stdout; the code's own output (and any child process's) is captured
or goes to stderr, so it can never break the protocol.
"""

import contextlib
import io
import json
import os
import sys
import traceback

reply = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # anything written to fd 1 from now on (C code, subprocesses) lands in the log
sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
namespace: dict = {"__name__": "__main__"}

for line in sys.stdin:
    request = json.loads(line)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(request["code"], "<client cell>", "exec"), namespace)
            value = eval(request["expr"], namespace) if request.get("expr") else None
        answer = {"ok": True, "stdout": out.getvalue(), "value": value}
    except BaseException as exc:  # noqa: BLE001 - reported to the test, the session lives on
        answer = {
            "ok": False, "stdout": out.getvalue(), "type": type(exc).__name__,
            "bases": [c.__name__ for c in type(exc).__mro__], "message": str(exc),
            "traceback": traceback.format_exc(),
        }
    reply.write(json.dumps(answer, default=repr) + "\n")
