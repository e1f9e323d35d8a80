"""`airgate logs`: the last lines byte for byte, and --follow across supervisord's rotation."""

from __future__ import annotations

import time
from pathlib import Path

from infra.local.logs import follow_lines, last_lines


def test_last_lines_are_the_files_own_bytes(tmp_path: Path) -> None:
    log = tmp_path / "gateways.log"
    lines = [f'{{"n": {n}, "path": "/{"x" * 300}"}}\n'.encode() for n in range(2000)]
    log.write_bytes(b"".join(lines))
    assert last_lines(log, 3) == b"".join(lines[-3:])
    assert last_lines(log, 5000) == b"".join(lines)
    assert last_lines(tmp_path / "missing.log", 3) == b""


def test_follow_yields_new_complete_lines_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "gateways.log"
    log.write_bytes(b"old line\n")
    follow = follow_lines(log, stop=time.monotonic() + 30)
    with log.open("ab") as handle:
        handle.write(b'{"a": 1}\n{"b": ')
    assert next(follow) == b'{"a": 1}\n'
    with log.open("ab") as handle:
        handle.write(b"2}\n")
    assert next(follow) == b'{"b": 2}\n'
    log.rename(tmp_path / "gateways.log.1")  # supervisord's rotation: rename, start a new file
    log.write_bytes(b'{"c": 3}\n')
    assert next(follow) == b'{"c": 3}\n'
