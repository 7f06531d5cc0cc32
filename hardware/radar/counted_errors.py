"""Counting a stream's bad input without flooding the journal.

A decoder that meets garbage on a serial line can see thousands of bad bytes a minute; logging each
one would bury everything else. `ErrorCounter` counts every occurrence by kind and logs the first
one of a kind, then every `every`-th, with the running total. Count-based rather than time-based,
so it needs no clock and behaves the same in a test, a replay and the daemon.
"""

from __future__ import annotations

import logging

__all__ = ["ErrorCounter"]


class ErrorCounter:
    """Counts errors by kind and logs a sample of them.

    Args:
        logger: Where the sampled warnings go.
        source: Name of the stream in the log lines ("MR60BHA2", "A121 127.0.0.1:6110").
        every: Log the 1st, then every `every`-th occurrence of each kind, >= 1.
    """

    def __init__(self, logger: logging.Logger, source: str, every: int = 100) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self._log = logger
        self._source = source
        self._every = every
        self.counts: dict[str, int] = {}

    def note(self, kind: str, detail: str = "") -> None:
        """Count one error of `kind`; log it if it is the first or an `every`-th one."""
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        if n == 1 or n % self._every == 0:
            self._log.warning(
                "%s: %s%s (%d so far)", self._source, kind, f": {detail}" if detail else "", n
            )

    @property
    def total(self) -> int:
        """All errors counted so far."""
        return sum(self.counts.values())
