"""A fault-injection point for the recovery tests, in production code on purpose.

The tests run a job in a child process that must die exactly where a killed kernel would —
after intent is stored, right after ``create``, while polling, while streaming results, while
merging — and then resume it from a fresh process. Unless ``BATCHKIT_CRASH_AT`` names a point,
:func:`crashpoint` does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crashpoint"]


def crashpoint(name: str) -> None:
    """Die here, as a killed kernel would, when ``BATCHKIT_CRASH_AT`` names this point.

    A fault-injection hook for the recovery tests: they run a job in a child process that is
    SIGKILLed at each point of the lifecycle, then resume it from a fresh process.
    """
    if os.environ.get("BATCHKIT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
