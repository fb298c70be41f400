"""Helpers the test modules import (``from helpers import ...``); fixtures live in conftest.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

# Real documents copied from ../shared/fixtures (each folder has its README/SOURCES note).
FIXTURES = Path(__file__).parent / "fixtures"


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> object:
    """Polls ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


__all__ = ["FIXTURES", "wait_for"]
