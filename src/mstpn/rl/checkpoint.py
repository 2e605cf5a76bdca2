"""Checkpoint files: written atomically, checked on load, refused with a clear message when bad.

Layout: a torch file holding ``{"format", "version", "sha256", "payload"}`` where ``payload`` is the
torch-serialised state as a uint8 tensor and ``sha256`` its digest, so truncation or bit rot is
detected before anything is used. Files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from mstpn.atomic import atomic_write_bytes
from mstpn.errors import UserError

FORMAT = "mstpn-checkpoint"
VERSION = 1


class CheckpointError(UserError):
    """A checkpoint file is missing, corrupt, of another format, or does not match the run."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Serialise ``state`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically."""
    inner = io.BytesIO()
    torch.save(state, inner)
    payload = inner.getvalue()
    outer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION,
                "sha256": hashlib.sha256(payload).hexdigest(),
                "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}, outer)
    atomic_write_bytes(path, outer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and verify a checkpoint; raise :class:`CheckpointError` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: corrupt or not a checkpoint ({type(exc).__name__})") from None
    if not isinstance(outer, dict) or outer.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mstpn checkpoint")
    if outer.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {outer.get('version')}, expected {VERSION}")
    payload = outer["payload"].numpy().tobytes()
    if hashlib.sha256(payload).hexdigest() != outer.get("sha256"):
        raise CheckpointError(f"{path}: checksum mismatch, the file is corrupt")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: corrupt payload ({type(exc).__name__})") from None


def check_compatible(saved: dict, current: dict, what: str, path: str | os.PathLike) -> None:
    """Refuse to resume when the saved configuration differs from the requested one."""
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}"
             for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    if diffs:
        raise CheckpointError(f"{path}: {what} does not match the checkpoint ({'; '.join(diffs)})")
