"""Scheduled faults: which upcoming requests get an error, a delay or a broken answer."""

from __future__ import annotations

import threading
from dataclasses import dataclass

KINDS = ("429", "500", "502", "503", "529", "401", "slow", "malformed", "wrong_shape", "reset")


@dataclass(slots=True)
class Fault:
    """One scheduled fault and how many matching requests it still skips / hits."""

    provider: str
    endpoint: str
    kind: str
    times: int
    after: int
    retry_after: int | None
    delay: float

    def matches(self, provider: str, endpoint: str) -> bool:
        """Whether a request to ``provider`` ``endpoint`` counts for this fault."""
        return self.provider in ("*", provider) and self.endpoint in ("*", endpoint)


class FaultBook:
    """Thread-safe list of scheduled faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Schedule ``fault``."""
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {KINDS}")
        if fault.times < 1 or fault.after < 0:
            raise ValueError("times must be >= 1 and after >= 0")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Drop every scheduled fault."""
        with self._lock:
            self._faults.clear()

    def take(self, provider: str, endpoint: str) -> Fault | None:
        """The fault this request gets, if any; every matching fault counts the request."""
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(provider, endpoint):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                elif chosen is None:
                    fault.times -= 1
                    chosen = fault
            self._faults = [f for f in self._faults if f.times > 0]
        return chosen
