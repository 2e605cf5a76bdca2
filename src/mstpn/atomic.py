"""Atomic file output for every result and checkpoint the project writes.

Write to a temporary file beside the target, then ``os.replace`` it.

A reader never sees a half-written file, and a failure (or an interrupt) leaves no file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mstpn.errors import UserError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating its folder); returns the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (creating its folder); returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: object) -> Path:
    """Write ``data`` as indented, standard JSON (no NaN) to ``path`` atomically; returns the path."""
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
