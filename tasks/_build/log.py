"""A build's log: its combined output, read as it is written, counted, capped, its last lines kept."""

from __future__ import annotations

from collections import deque
from typing import IO, Any

from core.redaction import redact

__all__ = ["TAIL_LINES", "BuildLog"]

#: Lines of the build log a failure carries.
TAIL_LINES = 60
_MAX_LINE = 64 * 1024


class BuildLog:
    """Reads a build's combined output: counts bytes, keeps the last lines, stops at a cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.step_text: deque[str] = deque(maxlen=TAIL_LINES)
        self.over = False

    def add(self, text: str) -> None:
        self.tail.append(text)

    def pump(self, stream: IO[bytes], kill: Any) -> None:
        self.step_text.clear()
        for raw in iter(lambda: stream.readline(_MAX_LINE), b""):
            self.size += len(raw)
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.tail.append(line)
            self.step_text.append(line)
            if self.size > self.cap and not self.over:
                self.over = True
                kill()

    def text(self) -> str:
        return redact("\n".join(self.tail))
