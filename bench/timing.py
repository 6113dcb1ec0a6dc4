"""Timing and waiting helpers shared by the benchmarks (and the tests' polling waits).

``timed`` runs one command and returns its wall time in milliseconds with its stdout;
``wait_until`` polls a predicate until it returns something true.
"""

from __future__ import annotations

import subprocess
import time


def timed(argv, env, stdin: bytes | None = None) -> tuple[float, bytes]:
    """Run ``argv`` once (output captured); ``(wall milliseconds, stdout)``."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, input=stdin, capture_output=True, check=False)
    return (time.perf_counter() - start) * 1000, proc.stdout


def wait_until(predicate, timeout: float = 10.0, what: str = "condition", step: float = 0.05):
    """Poll ``predicate`` every ``step`` seconds; its first true value. ``AssertionError``
    naming ``what`` when ``timeout`` seconds pass without one (checked once more at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(step)
