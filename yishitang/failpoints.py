"""Named points on guarded paths (between a read and the write it decides) where a test can hold
a request, so a race is played in one chosen order instead of hoped for.

Nothing arms a point outside the tests: `reach` is then one dict lookup that finds nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

_armed: dict[str, Callable[[], None]] = {}


def reach(name: str) -> None:
    """Called by the product code at the point `name`; runs what a test armed there, if anything."""
    action = _armed.get(name)
    if action is not None:
        action()


@contextmanager
def armed(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` whenever a request reaches `name`, for the duration of the block."""
    _armed[name] = action
    try:
        yield
    finally:
        _armed.pop(name, None)
