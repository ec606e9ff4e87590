"""The progress bar of long management commands: `[#########.....................] 12/40` on stderr."""

from __future__ import annotations

from typing import Protocol

WIDTH = 30


class _Stream(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def progress_write(stream: _Stream, done: int, total: int) -> None:
    """Redraws the bar in place (a carriage return, no newline); a total of 0 shows a full bar.
    The caller ends the line when the work is done."""
    filled = WIDTH * done // total if total else WIDTH
    stream.write(f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}")
    stream.flush()
