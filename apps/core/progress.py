"""The progress bar of long management commands: `[#########.....................] 12/40` on stderr."""

from __future__ import annotations

from django.core.management.base import OutputWrapper

WIDTH = 30


def progress_write(stream: OutputWrapper, done: int, total: int) -> None:
    """Redraws the bar in place on a command's stream (a carriage return, no newline); a total of 0
    shows a full bar. The caller ends the line when the work is done."""
    filled = WIDTH * done // total if total else WIDTH
    stream.write(f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}", ending="")
    stream.flush()
