"""Reading a component's log for `airgate logs`: the last N lines as bytes, then (--follow) new
lines as they are written, across supervisord's rotation (the file is renamed and a new one begun)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

POLL_SECONDS = 0.2
"""How often --follow looks for new lines: a person watching, not a synchronisation."""


def last_lines(path: Path, count: int) -> bytes:
    """The last `count` complete or partial lines of the file, byte for byte."""
    if count <= 0 or not path.exists():
        return b""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])


def follow_lines(path: Path, stop: float | None = None) -> Iterator[bytes]:
    """Complete lines appended after this call; reopens the file when it is rotated or truncated.
    `stop` (monotonic time) ends the iteration, for callers that want a bounded watch."""
    handle = path.open("rb")
    handle.seek(0, os.SEEK_END)
    return _follow(path, handle, stop)


def _follow(path: Path, handle: BinaryIO, stop: float | None) -> Iterator[bytes]:
    pending = b""
    try:
        while stop is None or time.monotonic() < stop:
            chunk = handle.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line + b"\n"
                continue
            try:
                current = path.stat()
            except FileNotFoundError:
                current = None
            rotated = current is not None and current.st_ino != os.fstat(handle.fileno()).st_ino
            if rotated or (current is not None and current.st_size < handle.tell()):
                handle.close()
                handle = path.open("rb")
                continue
            time.sleep(POLL_SECONDS)
    finally:
        handle.close()
