"""Job functions for the sweep tests (importable by the sweep's worker processes)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square(spec: dict) -> dict:
    import torch

    return {"y": spec["x"] ** 2, "threads": torch.get_num_threads(), "pid": os.getpid()}


def logged(spec: dict) -> dict:
    """Sleep, note the call in ``spec['log']``, and fail while ``spec['fail_flag']`` exists for x == 2."""
    time.sleep(spec.get("sleep", 0.0))
    if spec["x"] == 2 and Path(spec.get("fail_flag", "/nonexistent")).exists():
        raise RuntimeError("job 2 fails while the flag is there")
    with open(spec["log"], "a") as handle:
        handle.write(f"{spec['x']}\n")
    return {"x": spec["x"]}
