"""Races played in one chosen order, through the failpoints of yishitang/failpoints.py.

`race(first, second, hold_at=point)`: the first request runs until it reaches `point` (it has read
and decided) and is held there; the second then runs to its end, passing the point; then the first
writes what it decided on its stale read. A guard that makes the second wait for the first shows as
the second retrying its transaction: that lets the first go on, and the second waits for it.
No sleeps, no timing: the same order every run.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack

from yishitang import failpoints

HANG = 30  # seconds: only a deadlock takes this long; it is the failure, not a measurement


class Order:
    def __init__(self):
        self.holder = None
        self.arrived, self.release, self.done = threading.Event(), threading.Event(), threading.Event()

    def hold_first(self):
        if self.holder is None:  # only the first thread runs until the hold is taken
            self.holder = threading.get_ident()
            self.arrived.set()
            assert self.release.wait(HANG), "the held request was never released"

    def second_retries(self):
        """The second met the held first and rolled back: let the first finish before trying again."""
        if self.holder is not None and threading.get_ident() != self.holder and not self.release.is_set():
            self.release.set()
            assert self.done.wait(HANG), "the held request did not finish"


def race(first, second, hold_at):
    """Run `first()` until it reaches `hold_at`, then `second()`; return both results in that order."""
    order, results = Order(), {}

    def run_first():
        try:
            results["first"] = first()
        finally:
            order.done.set()
            order.arrived.set()  # a first request that never reaches the point must not hang the test

    with ExitStack() as stack:
        stack.enter_context(failpoints.armed(hold_at, order.hold_first))
        stack.enter_context(failpoints.armed("transaction.retry", order.second_retries))
        thread = threading.Thread(target=run_first, daemon=True)
        thread.start()
        assert order.arrived.wait(HANG), "the first request hangs before the point"
        assert order.holder is not None, f"the first request finished without reaching {hold_at}: {results}"
        try:
            results["second"] = second()
        finally:
            order.release.set()
            thread.join(HANG)
    assert not thread.is_alive(), "the first request hangs"
    return results["first"], results["second"]
