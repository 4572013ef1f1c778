"""Module-level work functions for the engine tests (engines pickle functions by reference)."""

from __future__ import annotations

import os
import time

STATE: dict = {}


def init(tag: str) -> None:
    STATE["tag"] = tag
    STATE["inits"] = STATE.get("inits", 0) + 1


def double(batch: list[int]) -> list:
    time.sleep(0.05)
    return [ValueError(f"bad item {x}") if x == 3 else (x * 2, STATE.get("tag"), os.getpid()) for x in batch]
