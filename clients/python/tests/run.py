"""Runs odin-client's tests (test_*.py beside this file) with unittest.

Prints one JSON object per test on stdout, prefixed with `ODIN-TEST `, for tests/e2e to report each
as a test of its own, then `N passed, N failed`. Exits 1 when a test failed.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import unittest
from pathlib import Path
from types import TracebackType
from typing import Optional, Tuple, Type, Union

ExcInfo = Union[Tuple[Type[BaseException], BaseException, TracebackType], Tuple[None, None, None]]


class JsonResult(unittest.TestResult):
    """Reports every test as it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.passed = 0
        self.failed = 0
        self.started = 0.0

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self.started = time.monotonic()

    def _report(self, test: unittest.TestCase, ok: bool, detail: str = "") -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        name = f"{type(test).__name__}.{test._testMethodName}"
        ms = round((time.monotonic() - self.started) * 1000)
        print("ODIN-TEST " + json.dumps({"name": name, "ok": ok, "ms": ms, "detail": detail}), flush=True)

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._report(test, True)

    def addFailure(self, test: unittest.TestCase, err: ExcInfo) -> None:
        super().addFailure(test, err)
        self._report(test, False, "".join(traceback.format_exception(*err)))

    def addError(self, test: unittest.TestCase, err: ExcInfo) -> None:
        super().addError(test, err)
        self._report(test, False, "".join(traceback.format_exception(*err)))


def main(pattern: Optional[str] = None) -> int:
    here = Path(__file__).parent
    suite = unittest.defaultTestLoader.discover(str(here), pattern="test_*.py", top_level_dir=str(here))
    if pattern:
        suite = unittest.TestSuite(t for t in _flatten(suite) if pattern in t.id())
    result = JsonResult()
    suite.run(result)
    print(f"{result.passed} passed, {result.failed} failed", flush=True)
    return 0 if result.failed == 0 and result.passed > 0 else 1


def _flatten(suite: unittest.TestSuite) -> "list[unittest.TestCase]":
    out = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
