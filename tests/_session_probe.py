"""Module-level (picklable) session factory and batch function for tests/test_engine_session.py."""

from __future__ import annotations

import os


class Counter:
    """A session object: built once per worker; counts the batches it ran."""

    def __init__(self, plan):
        self.plan = None if plan is None else list(plan)
        self.batches = 0
        self.closed = False

    def close(self):
        self.closed = True


class Factory:
    def __init__(self):
        self.built: list[Counter] = []

    def __call__(self, plan):
        c = Counter(plan)
        self.built.append(c)
        return c


def work(session: Counter, batch: list[int]) -> list[tuple[int, int, int, bool]]:
    session.batches += 1
    return [(x * 2, os.getpid(), session.batches, session.plan is not None) for x in batch]
