"""`python -m verl_plugin.math_worker`: one math-verify judge, a child process of the reward.

Protocol, one JSON object per line: it prints `{"ready": true}` once math-verify is imported,
then answers each request `{"gold": [str, ...], "answer": str}` read from stdin with
`{"equal": bool}` or `{"error": str}`. It exits when stdin closes (its parent went away).

math-verify's own timeouts (`signal.alarm`) are turned off: the parent enforces the timeout by
killing this process, which works whatever the judge is stuck in (sympy in C code, a thread)
and never turns a timeout into a silent False. Errors are answered, never swallowed. As a
backstop that needs no parent (one killed with SIGKILL cannot kill its children), each request
also lowers RLIMIT_CPU to the CPU time used so far plus twice its `cpu_limit_s`: the kernel ends a
judge that computes past it, and a watchdog thread ends an idle one whose parent is gone.
"""
from __future__ import annotations

import json
import logging
import os
import resource
import sys
import threading
import time


def _parse(text: str) -> list:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    # Both sides are given boxed, so the boxed extraction comes first; plain expressions
    # ("0.5", "1/2") are understood too.
    targets = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
    return parse("\\boxed{" + text + "}", targets, parsing_timeout=None)


def equal(golds: list[str], answer: str) -> bool:
    """True when the answer is equivalent to one of the ground truths (math-verify)."""
    from math_verify import verify

    predicted = _parse(answer)
    if not predicted:
        return False
    return any(verify(_parse(gold), predicted, timeout_seconds=None) for gold in golds)


def limit_cpu(seconds: float) -> None:
    """RLIMIT_CPU (soft) := CPU time used so far + seconds (SIGXCPU ends the process past it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def watch_parent(parent: int, period_s: float = 1.0) -> None:
    """Ends this process when its parent is gone (re-parented to init or a subreaper)."""
    def run() -> None:
        while os.getppid() == parent:
            time.sleep(period_s)
        os._exit(0)
    threading.Thread(target=run, daemon=True).start()


def serve(reader, writer) -> None:
    writer.write(json.dumps({"ready": True}) + "\n")
    writer.flush()
    for line in reader:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if request.get("cpu_limit_s"):
                limit_cpu(2 * float(request["cpu_limit_s"]) + 1)
            reply = {"equal": bool(equal([str(g) for g in request["gold"]], str(request["answer"])))}
        except Exception as exc:  # noqa: BLE001 - answered to the parent, which decides
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        writer.write(json.dumps(reply) + "\n")
        writer.flush()


def main() -> int:
    # math-verify warns once that its own timeout is off: the parent's kill is the timeout.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    watch_parent(os.getppid())
    import math_verify  # noqa: F401  (imported before "ready", so start-up is not a sample's time)
    serve(sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
