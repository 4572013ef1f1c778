"""A test hook that simulates a kill of ``celebref build`` at a chosen point of a stage."""

from __future__ import annotations

import os
from typing import Callable


class BuildInterrupted(KeyboardInterrupt):
    """Raised by the test hook ``CELEBREF_BUILD_INTERRUPT=<stage>:<n>`` (stage ``analyze`` or ``write``) after
    ``n`` items of that stage, to simulate a kill at a chosen point."""


def interrupt_hook(stage: str) -> Callable[[int], None]:
    """``check(done)`` raising :class:`BuildInterrupted` once ``done`` reaches the count set for ``stage``."""
    spec = os.environ.get("CELEBREF_BUILD_INTERRUPT", "")
    want = int(spec.split(":", 1)[1]) if spec.startswith(stage + ":") else None

    def check(done: int) -> None:
        if want is not None and done >= want:
            raise BuildInterrupted(f"test interrupt after {done} {stage} items")

    return check
