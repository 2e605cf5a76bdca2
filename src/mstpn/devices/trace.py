"""Source-measure-unit traces: samples of applied voltage and measured current over time.

A trace is a CSV with header ``time_s,voltage_v,current_a`` (column order free, extra columns ignored,
blank lines and lines starting with ``#`` skipped). Samples with |V| at or above a pulse threshold
are pulses; the rest are bias/read phases where G = I / V.

Conventions shared by the simulator and the fitter:

- A pulse is a run of consecutive samples with |V| >= threshold and one polarity; its amplitude is
  the mean V of the run and its width the time from its first to its last sample, so a pulse needs at
  least two samples (its start and its end). Pulses must be separated by at least one bias sample.
- A bias/read phase is a run of consecutive sub-threshold samples at one level (consecutive samples
  differing by at most ``level_tol``). Its samples with |V| >= ``READ_MIN_V`` are reads, G = I / V;
  a phase at 0 V holds the device but reads nothing.
- Between two samples the device holds the bias of the later sample when that one is a bias sample,
  otherwise (the interval leading into a pulse) the bias of the earlier one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mstpn.errors import UserError

COLUMNS = ("time_s", "voltage_v", "current_a")
READ_MIN_V = 1e-3
"""Smallest |V| (V) at which a bias sample counts as a read; below it G = I / V is meaningless."""


class TraceError(UserError):
    """A trace file is malformed, or a trace cannot give what is asked of it."""


@dataclass
class Trace:
    """One trace: parallel float64 arrays of time (s), applied voltage (V) and measured current (A).

    ``source`` names the trace in messages (the file path when read from disk) and ``lines`` holds
    the file line of every sample, so errors can point at the row.
    """

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    source: str = "trace"
    lines: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.time_s = np.asarray(self.time_s, dtype=np.float64).reshape(-1)
        self.voltage_v = np.asarray(self.voltage_v, dtype=np.float64).reshape(-1)
        self.current_a = np.asarray(self.current_a, dtype=np.float64).reshape(-1)
        n = len(self.time_s)
        if len(self.voltage_v) != n or len(self.current_a) != n:
            raise TraceError(f"{self.source}: time_s, voltage_v and current_a differ in length "
                             f"({n}, {len(self.voltage_v)}, {len(self.current_a)})")

    def __len__(self) -> int:
        return len(self.time_s)

    def where(self, index: int) -> str:
        """``'SOURCE line N'`` (or ``'SOURCE sample i'``) for messages about sample ``index``."""
        if self.lines is not None and 0 <= index < len(self.lines):
            return f"{self.source} line {int(self.lines[index])}"
        return f"{self.source} sample {index}"


@dataclass(frozen=True)
class Pulse:
    """A programming pulse: samples ``start:stop`` of a trace, all with |V| >= threshold."""

    start: int
    """Index of the pulse's first sample."""
    stop: int
    """One past the index of its last sample."""
    t_start: float
    """Time of the first sample (s)."""
    t_end: float
    """Time of the last sample (s)."""
    amplitude: float
    """Mean voltage of the run; its sign is the polarity (V)."""

    @property
    def width(self) -> float:
        """Pulse width t_p = t_end - t_start (s)."""
        return self.t_end - self.t_start


@dataclass(frozen=True)
class BiasPhase:
    """A bias/read phase: samples ``start:stop`` of a trace below the pulse threshold, at one level."""

    start: int
    """Index of the phase's first sample."""
    stop: int
    """One past the index of its last sample."""
    t_start: float
    """Time of the first sample (s)."""
    t_end: float
    """Time of the last sample (s)."""
    level: float
    """Mean bias voltage of the phase (V)."""
    time_s: np.ndarray = field(repr=False)
    """Times of the phase's reads (samples with |V| >= READ_MIN_V) (s)."""
    conductance: np.ndarray = field(repr=False)
    """Conductance G = I / V of each read (S)."""


Event = Pulse | BiasPhase


def _check_threshold(pulse_threshold: float) -> float:
    value = float(pulse_threshold)
    if not math.isfinite(value) or value <= READ_MIN_V:
        raise TraceError(f"pulse threshold: must be a number > {READ_MIN_V} V, got {pulse_threshold!r}")
    return value


def segment(trace: Trace, pulse_threshold: float = 0.5, level_tol: float = 0.02) -> list[Event]:
    """Split a trace into pulses and bias/read phases, in time order.

    ``level_tol`` (V) is the largest step between consecutive bias samples that stays in one phase.
    A pulse with a single sample has no width and raises :class:`TraceError` naming its line.
    """
    threshold = _check_threshold(pulse_threshold)
    v, t, i = trace.voltage_v, trace.time_s, trace.current_a
    n = len(trace)
    if n == 0:
        return []
    is_pulse = np.abs(v) >= threshold
    brk = np.ones(n, dtype=bool)
    if n > 1:
        same_kind = is_pulse[1:] == is_pulse[:-1]
        pulse_same_sign = is_pulse[1:] & (np.sign(v[1:]) == np.sign(v[:-1]))
        bias_same_level = ~is_pulse[1:] & (np.abs(np.diff(v)) <= level_tol)
        brk[1:] = ~(same_kind & (pulse_same_sign | bias_same_level))
    starts = np.flatnonzero(brk)
    stops = np.append(starts[1:], n)
    events: list[Event] = []
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        if is_pulse[a]:
            if b - a < 2:
                raise TraceError(f"{trace.where(a)}: pulse of {v[a]:.3g} V has a single sample; a pulse "
                                 "needs samples at its start and its end to give its width")
            events.append(Pulse(a, b, float(t[a]), float(t[b - 1]), float(v[a:b].mean())))
        else:
            vv = v[a:b]
            read = np.abs(vv) >= READ_MIN_V
            g = i[a:b][read] / vv[read]
            events.append(BiasPhase(a, b, float(t[a]), float(t[b - 1]), float(vv.mean()),
                                    t[a:b][read].copy(), g))
    return events


def _fail(path: str, line: int | None, message: str) -> TraceError:
    where = path if line is None else f"{path} line {line}"
    return TraceError(f"{where}: {message}")


def read_trace_csv(path: str | os.PathLike, pulse_threshold: float = 0.5) -> Trace:
    """Read and validate a trace CSV; any problem raises :class:`TraceError` naming file and line.

    Checked: the file is readable text; the header names ``time_s``, ``voltage_v`` and ``current_a``
    once each; every row has as many cells as the header; those three cells are finite numbers;
    time increases strictly; there is at least one data row; every pulse (|V| >= ``pulse_threshold``)
    has a start and an end sample.
    """
    name = str(path)
    threshold = _check_threshold(pulse_threshold)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _fail(name, None, "no such trace file") from None
    except IsADirectoryError:
        raise _fail(name, None, "is a directory, expected a trace CSV file") from None
    except UnicodeDecodeError:
        raise _fail(name, None, "not a text CSV file (cannot decode it as UTF-8)") from None
    except OSError as exc:
        raise _fail(name, None, f"cannot read trace file ({exc.strerror})") from None
    rows = [(no, s) for no, s in enumerate((ln.strip() for ln in text.splitlines()), 1)
            if s and not s.startswith("#")]
    expected = ",".join(COLUMNS)
    if not rows:
        raise _fail(name, None, f"empty file; expected a header {expected} and data rows")
    header_line, header = rows[0]
    names = [c.strip() for c in header.split(",")]
    for col in COLUMNS:
        if names.count(col) > 1:
            raise _fail(name, header_line, f"column {col!r} appears {names.count(col)} times in the header")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        unknown = [c for c in names if c not in COLUMNS]
        found = f" (found {', '.join(repr(c) for c in unknown)} instead)" if unknown else ""
        raise _fail(name, header_line, f"missing column {', '.join(repr(c) for c in missing)}{found}; "
                    f"expected header {expected}")
    data = rows[1:]
    if not data:
        raise _fail(name, None, f"no data rows after the header {expected}")
    ncol = len(names)
    cells = [s.split(",") for _, s in data]
    lines = np.array([no for no, _ in data], dtype=np.int64)
    for (no, _), row in zip(data, cells, strict=True):
        if len(row) != ncol:
            raise _fail(name, no, f"expected {ncol} cells like the header, found {len(row)}")
    index = [names.index(c) for c in COLUMNS]
    picked = [[row[k] for k in index] for row in cells]
    try:
        values = np.array(picked, dtype=np.float64)
    except ValueError:
        for (no, _), row in zip(data, picked, strict=True):
            for col, cell in zip(COLUMNS, row, strict=True):
                try:
                    float(cell)
                except ValueError:
                    shown = "empty" if not cell.strip() else f"not a number: {cell.strip()!r}"
                    raise _fail(name, no, f"column {col!r} is {shown}") from None
        raise  # pragma: no cover - numpy and float() disagree
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise _fail(name, int(lines[r]), f"column {COLUMNS[c]!r} is {values[r, c]}; "
                    "every value must be a finite number")
    t = values[:, 0]
    step = np.flatnonzero(np.diff(t) <= 0)
    if step.size:
        r = int(step[0]) + 1
        raise _fail(name, int(lines[r]), f"time_s {t[r]:.9g} is not after the previous sample's "
                    f"{t[r - 1]:.9g}; time must increase strictly")
    trace = Trace(t, values[:, 1], values[:, 2], source=name, lines=lines)
    segment(trace, threshold)  # pulses without a width fail here, with their line
    return trace


def write_trace_csv(trace: Trace, path: str | os.PathLike) -> Path:
    """Write ``trace`` as a CSV with header ``time_s,voltage_v,current_a``, atomically.

    The file appears complete or not at all (temporary file beside it, then ``os.replace``); its folder
    is created when missing. Times are written with 17 significant digits, so pulse widths (differences
    of sample times) survive the round trip exactly; voltages and currents with 10.
    """
    from mstpn.atomic import atomic_write_text

    lines = [",".join(COLUMNS)]
    lines.extend(f"{t:.17g},{v:.10g},{i:.10g}"
                 for t, v, i in zip(trace.time_s.tolist(), trace.voltage_v.tolist(),
                                    trace.current_a.tolist(), strict=True))
    return atomic_write_text(path, "\n".join(lines) + "\n")
