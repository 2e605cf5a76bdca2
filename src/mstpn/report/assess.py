"""`mstpn device assess`: is this memristor good enough for the trained m-STPN agent, and what would it save?

One command takes a device, as a parameter file or as measured traces (fitted first, with
:func:`mstpn.devices.fit.fit_traces`, or per device with :func:`mstpn.devices.population.fit_population`),
and writes one report (self-contained ``report.html`` and ``report.md`` beside its figures):

1. the verdict: the tolerance axis on which the device's value predicts the agent's lowest score;
2. the device's six synaptic functions (:func:`mstpn.devices.demo.run_device_demo`);
3. the fit and its uncertainties (95 % intervals, parameters not identified, correlations);
4. the device on the agent's tolerance map (``mstpn pong tolerance``): the score the map predicts at
   the device's value of every device property, interpolated between the map's points;
5. the agent's greedy score on this device (the learned weights, devices drawn from these parameters,
   as ``mstpn pong eval --device-params``), unless ``games`` is 0; with ``finetune_frames`` N > 0
   also its score after N frames of fine-tuning on that very chip (:func:`mstpn.rl.finetune.finetune`;
   ~4 ms per frame on one core here), the fine-tuned agent kept as ``finetuned_agent.pt``;
6. the energy per game against the GPU presets: from the games played (energy probe) and in the
   paper's accounting (:func:`mstpn.energy.paper.reproduce_paper`).

Everything is computed before anything is written, so bad input leaves no files behind.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mstpn.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from mstpn.devices.params import PARAM_NAMES, SrTiO3Params, load_params, srtio3_weilenmann2024
from mstpn.errors import UserError
from mstpn.report.document import Document, Section, render_html, render_markdown
from mstpn.report.reproduce_context import fmt, sh

DEFAULT_TOLERANCE = Path("results/pong/tolerance/tolerance.json")
"""The shipped agent's tolerance map (made by ``mstpn pong tolerance``)."""
DEFAULT_CHECKPOINT = Path("checkpoints/pong_mstpn.pt")
"""The trained m-STPN agent committed with the project."""
DEFAULT_GAMES = 3
"""Greedy test games played on the device unless told otherwise."""
MAX_FRAMES = 108_000
"""Emulator frames after which a game is cut (ALE's usual 30 minutes)."""
UNITS = {"g_min": ("nS", 1e9), "g_max": ("nS", 1e9), "a_st": ("nS", 1e9), "a_lt": ("nS", 1e9),
         "v0": ("V", 1.0), "t0": ("ms", 1e3), "beta": ("", 1.0), "v_th": ("V", 1.0), "tau0": ("s", 1.0),
         "v_tau": ("V", 1.0), "p_leak_ref": ("nW", 1e9), "v_leak_ref": ("V", 1.0),
         "d2d_sigma": ("", 1.0), "c2c_sigma": ("", 1.0), "read_sigma": ("", 1.0)}
"""Display unit of every parameter and its factor from SI."""
TIE = 0.05
"""Predicted scores closer than this (points) count as equal when ranking the axes."""
PROPERTY_NAMES = {"c2c_sigma": "cycle-to-cycle noise", "read_sigma": "read noise",
                  "d2d_sigma": "device-to-device spread", "g_max": "the upper conductance bound",
                  "tau0": "the zero-bias decay time constant",
                  "v_tau": "the bias voltage scale of the decay time constant"}
"""How the verdict names each device property of the tolerance map."""


# ------------------------------------------------------------------------------------------ device
@dataclass
class AssessedDevice:
    """The parameters under assessment, where they came from, and what is known of their uncertainty."""

    params: SrTiO3Params
    kind: str
    """``params`` (a parameter file), ``fit`` (traces fitted together) or ``population`` (one device per
    trace file)."""
    inputs: list[str]
    fit: object | None = None
    """The :class:`mstpn.devices.fit.FitResult` or :class:`mstpn.devices.population.PopulationFit`."""
    stored: dict = field(default_factory=dict)
    """The raw JSON of a parameter file (a fit's ``_intervals_95`` and ``_not_identified`` are used)."""
    intervals: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    """95 % interval per parameter where known (for a population: the range over its devices)."""
    origin: dict[str, str] = field(default_factory=dict)
    """Per parameter: fitted, not identified, fixed (not fitted), from the file, ..."""

    @property
    def not_identified(self) -> list[str]:
        """Parameters the traces did not pin down."""
        return [n for n, o in self.origin.items() if o.startswith("not identified")]


def _split_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    if not inputs:
        raise UserError("give one parameter file (PARAMS.json) or one or more traces (TRACE.csv)")
    paths = [Path(p) for p in inputs]
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    jsons = [p for p in paths if p.suffix.lower() == ".json"]
    csvs = [p for p in paths if p.suffix.lower() == ".csv"]
    other = [p for p in paths if p not in jsons and p not in csvs]
    if other:
        raise UserError(f"{other[0]}: expected a parameter file (.json) or a trace (.csv)")
    if jsons and (csvs or len(jsons) > 1):
        raise UserError("give either one parameter file (PARAMS.json) or traces (TRACE.csv), not both "
                        f"and not several parameter files (got {', '.join(str(p) for p in paths)})")
    return jsons, csvs


def _interval(lo: object, hi: object) -> tuple[float | None, float | None]:
    def clean(x: object) -> float | None:
        return float(x) if isinstance(x, (int, float)) and math.isfinite(float(x)) else None

    return clean(lo), clean(hi)


def load_device(inputs: Sequence[str | os.PathLike], *, population: bool = False,
                base: SrTiO3Params | None = None, pulse_threshold: float = 0.5,
                t0: float = 1e-3) -> AssessedDevice:
    """Read a parameter file, or fit traces (together; with ``population`` one device per file)."""
    jsons, csvs = _split_inputs(inputs)
    if jsons:
        if population:
            raise UserError("--population: needs trace files (one per device), not a parameter file")
        params = load_params(jsons[0])
        stored = json.loads(jsons[0].read_text())
        dev = AssessedDevice(params, "params", [str(jsons[0])], stored=stored)
        fitted = set(stored.get("fitted") or [])
        fixed = set(stored.get("fixed") or [])
        loose = set(stored.get("_not_identified") or [])
        for name in PARAM_NAMES:
            if name in loose:
                dev.origin[name] = "not identified (by the fit that wrote the file)"
            elif name in fitted:
                dev.origin[name] = "fitted (by the fit that wrote the file)"
            elif name in fixed:
                dev.origin[name] = "fixed in the fit that wrote the file (an assumption)"
            elif name in stored:
                dev.origin[name] = "from the file"
            else:
                dev.origin[name] = "not in the file: preset default"
        for name, pair in (stored.get("_intervals_95") or {}).items():
            if name in PARAM_NAMES and isinstance(pair, list) and len(pair) == 2:
                dev.intervals[name] = _interval(*pair)
        return dev

    from mstpn.devices.fit import fit_traces
    from mstpn.devices.trace import read_trace_csv

    traces = [read_trace_csv(path, pulse_threshold) for path in csvs]
    options = {"base": base or srtio3_weilenmann2024(), "t0": t0, "pulse_threshold": pulse_threshold}
    if population:
        from mstpn.devices.population import fit_population

        result = fit_population([[t] for t in traces], **options)
        dev = AssessedDevice(result.params, "population", [str(p) for p in csvs], fit=result)
        loose = {n for d in result.devices for n in d.not_identified}
        for name in PARAM_NAMES:
            fits = result.devices
            if name == "d2d_sigma":
                dev.origin[name] = "from the devices' spread"
            elif name in loose:
                dev.origin[name] = "not identified in some device's fit"
            elif all(name in f.fitted for f in fits):
                dev.origin[name] = f"fitted ({len(fits)} devices)"
            else:
                dev.origin[name] = "fixed (not fitted: from --base or the preset)"
            if all(name in f.fitted for f in fits):
                values = [getattr(f.params, name) for f in fits]
                dev.intervals[name] = (float(min(values)), float(max(values)))
        return dev

    result = fit_traces(traces, **options)
    dev = AssessedDevice(result.params, "fit", [str(p) for p in csvs], fit=result)
    for name in PARAM_NAMES:
        if name in result.not_identified:
            dev.origin[name] = "not identified by the traces"
        elif name in result.fitted:
            dev.origin[name] = "fitted"
        else:
            dev.origin[name] = "fixed (not fitted: from --base or the preset)"
    dev.intervals = {name: _interval(lo, hi) for name, (lo, hi) in result.intervals.items()}
    return dev


# ------------------------------------------------------------------------------------------ tolerance
def load_tolerance_map(path: str | os.PathLike) -> dict:
    """Read and check a ``tolerance.json`` written by ``mstpn pong tolerance``."""
    path = Path(path)
    hint = ("; make one with `mstpn pong tolerance CHECKPOINT --out DIR` and pass "
            "--tolerance DIR/tolerance.json")
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"--tolerance {path}: cannot read the tolerance map ({exc.strerror}){hint}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"--tolerance {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    props = data.get("properties") if isinstance(data, dict) else None
    if not isinstance(props, dict) or not props:
        raise UserError(f"--tolerance {path}: not a tolerance map (no 'properties'){hint}")
    from mstpn.rl.tolerance import AXES_BY_NAME

    for name, entry in props.items():
        if name not in AXES_BY_NAME:
            raise UserError(f"--tolerance {path}: unknown property {name!r}")
        points = entry.get("points") if isinstance(entry, dict) else None
        if not points or not all(isinstance(p.get("value"), (int, float))
                                 and isinstance(p.get("mean_score"), (int, float)) for p in points):
            raise UserError(f"--tolerance {path}: property {name!r} has no valid points")
    return data


def predict_score(points: Sequence[dict], value: float, log: bool = False) -> tuple[float, bool]:
    """The map's score at ``value``: linear interpolation between its points (in log2 of the value on a
    log axis); outside the swept range the nearest end. Returns (score, inside the swept range)."""
    pts = sorted((float(p["value"]), float(p["mean_score"])) for p in points)
    xs = np.array([x for x, _ in pts])
    ys = np.array([y for _, y in pts])
    inside = bool(xs[0] <= value <= xs[-1])
    if log:
        if value <= 0 or (xs <= 0).any():
            return float(ys[0] if value <= xs[0] else ys[-1]), inside
        xs, value = np.log2(xs), math.log2(value)
    return float(np.interp(value, xs, ys)), inside


def _score_range(points: Sequence[dict], lo: float, hi: float, log: bool) -> tuple[float, float]:
    grid = (np.geomspace(lo, hi, 41) if log and lo > 0 else np.linspace(lo, hi, 41))
    scores = [predict_score(points, float(x), log)[0] for x in grid]
    return float(min(scores)), float(max(scores))


def _own_score(entry: dict) -> float | None:
    for p in entry["points"]:
        if entry.get("preset") is not None and math.isclose(p["value"], entry["preset"], rel_tol=1e-9):
            return float(p["mean_score"])
    return None


def locate_on_map(tolerance: dict, device: AssessedDevice) -> list[dict]:
    """Every property of the map with the device's value, its origin, and the score predicted there.

    Device properties (SrTiO3Params fields) take the device's value; driver settings (bias range and
    levels, pulses per step, write threshold) are not properties of the device and stay at the agent's.
    """
    from mstpn.rl.tolerance import AXES_BY_NAME

    rows = []
    for name, entry in tolerance["properties"].items():
        axis = AXES_BY_NAME[name]
        is_device = axis.where == "device"
        agent_value = entry.get("preset")
        value = float(getattr(device.params, name)) if is_device else agent_value
        row = {"property": name, "label": axis.label, "name": PROPERTY_NAMES.get(name, axis.label),
               "log": axis.log, "device_property": is_device,
               "value": value, "agent_value": agent_value, "agent_score": _own_score(entry),
               "origin": device.origin.get(name, "driver setting, as trained") if is_device
               else "driver setting, as trained", "interval": None, "score_range": None}
        if value is None:
            row.update(predicted=None, inside=False)
        else:
            row["predicted"], row["inside"] = predict_score(entry["points"], value, axis.log)
        lo, hi = device.intervals.get(name, (None, None)) if is_device else (None, None)
        if is_device and (lo is not None or hi is not None):
            xs = [p["value"] for p in entry["points"]]
            lo = min(xs) if lo is None else lo
            hi = max(xs) if hi is None else hi
            row["interval"] = [float(lo), float(hi)]
            row["score_range"] = list(_score_range(entry["points"], lo, hi, axis.log))
        rows.append(row)
    return rows


def limiting_property(positions: Sequence[dict]) -> dict | None:
    """The device property whose value predicts the lowest score; ties go to the one farthest from the
    agent's own value (relative to the swept span)."""
    candidates = [p for p in positions if p["device_property"] and p["predicted"] is not None]
    if not candidates:
        return None

    def distance(p: dict) -> float:
        if p["agent_value"] is None:
            return 0.0
        if p["log"] and p["value"] > 0 and p["agent_value"] > 0:
            return abs(math.log2(p["value"] / p["agent_value"]))
        return abs(p["value"] - p["agent_value"]) / max(abs(p["agent_value"]), 1e-30)

    low = min(p["predicted"] for p in candidates)
    tied = [p for p in candidates if p["predicted"] <= low + TIE]
    return max(tied, key=distance)


def _value_text(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    unit, scale = UNITS.get(name, ("", 1.0))
    return fmt(value * scale, 3) + (f" {unit}" if unit else "")


def verdict_line(positions: Sequence[dict], limiting: dict | None, tolerance: dict,
                 played: dict | None, max_frames: int = MAX_FRAMES, tuned: dict | None = None) -> str:
    """One line: the limiting property, the score the map predicts there, and the measured score (and
    the score after fine-tuning, ``tuned``, when there was one)."""
    target = tolerance.get("target_score", 18.0)
    cut = f", cut at {max_frames:,} frames" if max_frames < MAX_FRAMES else ""
    measured = (f"; measured on this device: {played['mean_score']:+.1f} over {len(played['scores'])} "
                f"greedy test game(s){cut}" if played else "")
    if played and tuned:
        measured += f", {tuned['mean_score']:+.1f} after fine-tuning {tuned['finetune_frames']:,} frames"
    if limiting is None:
        return f"Verdict: the tolerance map sweeps no device property, so no limit can be named{measured}."
    own = limiting["agent_score"]
    where = "" if limiting["inside"] else " (beyond the swept range: the map's nearest point)"
    lead = (f"Verdict: limited by {limiting['name']} (`{limiting['property']}` = "
            f"{_value_text(limiting['property'], limiting['value'])}){where}: the map predicts "
            f"{limiting['predicted']:+.1f}")
    ref = (f" against {own:+.1f} at the agent's own value "
           f"{_value_text(limiting['property'], limiting['agent_value'])}" if own is not None else "")
    return f"{lead}{ref} (target +{target:g}){measured}."


# ------------------------------------------------------------------------------------------ games
def play_on_device(checkpoint: str | os.PathLike, params: SrTiO3Params | None, games: int, seed: int = 0,
                   max_frames: int = MAX_FRAMES) -> dict:
    """Greedy test games of the checkpoint's m-STPN with devices drawn from ``params`` (draw 0, as
    ``mstpn pong eval --device-params``; ``None``: the devices stored with the agent), the energy probe
    on: the play result plus ``energy`` (the per-game report against every GPU preset)."""
    from mstpn.energy.memristive import CellInfo
    from mstpn.energy.report import energy_report_from_probe
    from mstpn.rl.evaluate import load_agent, play
    from mstpn.tasks.pong import game_seed

    agent, saved = load_agent(checkpoint, params)
    frame_skip = int(saved.get("config", {}).get("frame_skip", 4))
    agent.core.enable_energy_probe()
    result = play(agent, games, game_seed("test", seed, games), frame_skip, max_frames=max_frames,
                  progress=False)
    result["energy"] = energy_report_from_probe(agent.core.energy_log, result["episode_steps"],
                                                CellInfo.from_cell(agent.core))
    agent.core.enable_energy_probe(False)
    result.update(frame_skip=frame_skip, trained_frames=saved.get("frames"))
    return result


def _check_checkpoint(checkpoint: Path) -> None:
    if not checkpoint.is_file():
        raise UserError(f"--checkpoint {checkpoint}: no such file (the shipped agent is "
                        f"{DEFAULT_CHECKPOINT}; --games 0 skips the games)")
    from mstpn.rl.checkpoint import load_checkpoint

    core = (load_checkpoint(checkpoint).get("agent_config") or {}).get("core")
    if core != "mstpn":
        raise UserError(f"--checkpoint {checkpoint}: the assessment plays an m-STPN agent, this one's core "
                        f"is {core!r}")


def _map_agent_note(tolerance_path: Path, checkpoint: Path) -> str | None:
    """A warning when the map's jobs say it was made for another agent file than ``checkpoint``."""
    jobs = tolerance_path.parent / "jobs"
    if not jobs.is_dir() or not checkpoint.is_file():
        return None
    from mstpn.rl.tolerance import checkpoint_digest

    for job in sorted(jobs.glob("*.json"))[:1]:
        try:
            digest = json.loads(job.read_text())["spec"]["checkpoint_sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if digest != checkpoint_digest(checkpoint):
            return (f"the tolerance map was made for another agent (checkpoint digest {digest}) than "
                    f"{checkpoint}: its predictions are for that agent")
    return None


# ------------------------------------------------------------------------------------------ report
def _device_section(sec: Section, demo: dict, fig: Path, params_cmd: str, out: Path, seed: int) -> None:
    ltm, tr, lp = demo["long_term_memory"], demo["transmission"], demo["long_term_plasticity"]
    stm, ppf, meta = demo["short_term_memory"], demo["short_term_facilitation"], demo["meta_plasticity"]
    lv = meta["levels"]
    sec.figure(fig, "The six synaptic functions of one simulated device with these parameters "
                    "(its device-to-device draw, cycle-to-cycle and read noise on), each read off its "
                    "own protocol's trace.")
    nl_ltp, nl_ltd = lp["ltp"]["nonlinearity"], lp["ltd"]["nonlinearity"]
    sec.table(["synaptic function", "figure of merit"], [
        ["long-term memory", f"retained level drifts at most {100 * ltm['max_abs_drift_rel']:.2f} %"],
        ["transmission", f"I = G V, R² ≥ {tr['min_r2']:.5f} over {len(tr['levels'])} conductance levels"],
        ["long-term plasticity", f"{1e9 * lp['ltp']['g_start_S']:.3g} → {1e9 * lp['ltp']['g_end_S']:.3g} → "
                                 f"{1e9 * lp['ltd']['g_end_S']:.3g} nS; nonlinearity LTP {fmt(nl_ltp)}, "
                                 f"LTD {fmt(nl_ltd)}"],
        ["short-term memory", f"volatile ΔG {fmt(1e9 * stm['dg_volatile_S'])} nS decays with τ = "
                              f"{fmt(stm['tau_fit_s'])} s at {stm['v_b']:+.2f} V"],
        ["short-term facilitation", f"paired-pulse index up to {max(ppf['ppf_index_percent']):.0f} %, "
                                    f"fading with τ = {fmt(ppf['fit_tau_s'])} s"],
        ["meta-plasticity", f"bias sets τ from {fmt(lv[0]['tau_fit_s'])} s at {lv[0]['v_b']:+.2f} V to "
                            f"{fmt(lv[-1]['tau_fit_s'])} s at {lv[-1]['v_b']:+.2f} V "
                            f"({meta['tau_span_decades']:.1f} decades)"],
    ], caption="All numbers are in device_functions.json.")
    sec.command(sh("mstpn", "device", "demo", "--out", out / "device", "--params", params_cmd,
                   "--seed", seed))
    sec.summary = (f"τ {fmt(lv[0]['tau_fit_s'])} s → {fmt(lv[-1]['tau_fit_s'])} s over the bias range, "
                   f"PPF up to {max(ppf['ppf_index_percent']):.0f} %")


def _param_rows(device: AssessedDevice) -> list[list[str]]:
    rows = []
    for name in PARAM_NAMES:
        unit, scale = UNITS[name]
        lo, hi = device.intervals.get(name, (None, None))
        if lo is None and hi is None:
            span = "—"
        else:
            ends = ["unbounded" if x is None else fmt(x * scale, 3) for x in (lo, hi)]
            span = f"{ends[0]} … {ends[1]}"
        label = f"`{name}`" + (f" ({unit})" if unit else "")
        rows.append([label, fmt(getattr(device.params, name) * scale, 4), span, device.origin.get(name, "")])
    return rows


def _fit_section(sec: Section, device: AssessedDevice, fit_png: Path | None, out: Path) -> None:
    kind = device.kind
    if kind == "params":
        sec.status = "skipped"
        sec.text(f"No traces given: the parameters come from `{device.inputs[0]}`."
                 + (" It was written by a fit, so its intervals and unidentified parameters are shown."
                    if device.intervals else ""))
        sec.table(["parameter", "value", "95 % interval", "origin"], _param_rows(device))
        sec.summary = f"parameters from {Path(device.inputs[0]).name} (not fitted here)"
        return
    fit = device.fit
    if kind == "population":
        sec.text(f"{len(fit.devices)} trace files, each fitted as its own device, then their population: "
                 "the geometric mean of each spread field, `d2d_sigma` from the devices' spread.")
        sec.table(["parameter", "population value", "range over the devices", "origin"], _param_rows(device),
                  caption="The range column is the smallest and largest value over the devices' own fits.")
        spreads = ", ".join(f"`{n}` {s:.3g}" for n, s in fit.log_sigma.items())
        sec.text(f"Spread (standard deviation of ln value over the devices): {spreads}.")
        worst = max(d.residual_rel_rms for d in fit.devices)
        sec.table(["device", "trace", "residual (rel. RMS)", "not identified"],
                  [[str(i + 1), Path(d.sources[0]).name, f"{100 * d.residual_rel_rms:.2f} %",
                    ", ".join(d.not_identified) or "—"] for i, d in enumerate(fit.devices)])
        for note in fit.notes:
            sec.text(f"Note: {note}")
        sec.command(sh("mstpn", "device", "fit", *device.inputs, "--population", "--out",
                       out / "params.json"))
        sec.summary = (f"{len(fit.devices)} devices, d2d_sigma {device.params.d2d_sigma:.3g}, worst residual "
                       f"{100 * worst:.2f} % RMS")
        return
    if fit_png is not None:
        sec.figure(fit_png, f"Data and fitted model ({len(fit.increments['v'])} pulses used).")
    sec.table(["parameter", "fitted value", "95 % interval", "origin"], _param_rows(device),
              caption="Intervals: Jacobian covariance of the pulse and decay fits scaled by the reduced "
                      "chi-square (chi-square interval for read_sigma). Fixed parameters are not fitted "
                      "and carry no interval: their values are assumptions.")
    sec.text(f"Residual: {100 * fit.residual_rel_rms:.2f} % relative RMS of G over all reads "
             f"(read-noise floor of the per-phase fits: {100 * fit.phase_rel_rms:.2f} %).")
    if fit.correlations:
        pairs = ", ".join(f"`{a}`~`{b}` {r:+.2f}" for a, b, r in fit.correlations)
        sec.text(f"Strongest correlations: {pairs}.")
    sec.text("Not identified by these traces: " + (", ".join(f"`{n}`" for n in fit.not_identified) or "none")
             + ".")
    for note in fit.notes:
        sec.text(f"Fit note: {note}")
    sec.command(sh("mstpn", "device", "fit", *device.inputs, "--out", out / "params.json",
                   "--plot", out / "fit.png"))
    loose = f"; not identified: {', '.join(fit.not_identified)}" if fit.not_identified else ""
    sec.summary = f"{len(device.inputs)} trace(s), residual {100 * fit.residual_rel_rms:.2f} % RMS{loose}"


def _tolerance_section(sec: Section, tol: dict, tol_path: Path, positions: list[dict],
                       limiting: dict | None, png: Path, note: str | None) -> None:
    sec.figure(png, "The agent's tolerance map, one property at a time; this device's value in green.")
    rows = []
    for p in positions:
        rng = "—" if p["score_range"] is None else f"{p['score_range'][0]:+.1f} … {p['score_range'][1]:+.1f}"
        pred = "—" if p["predicted"] is None else f"{p['predicted']:+.1f}"
        if p["device_property"] and not p["inside"]:
            pred += " (beyond map)"
        own = "—" if p["agent_score"] is None else f"{p['agent_score']:+.1f}"
        mark = " **← limiting**" if limiting is not None and p["property"] == limiting["property"] else ""
        rows.append([f"`{p['property']}`{mark}", _value_text(p["property"], p["value"]), p["origin"],
                     _value_text(p["property"], p["agent_value"]), own, pred, rng])
    sec.table(["property", "this device", "origin", "agent's own", "map score there", "predicted score",
               "over the interval"], rows,
              caption="Predicted score: the map's greedy score at the device's value, interpolated "
                      "linearly between the map's points (in log2 on the log axes); beyond the swept "
                      "range, the nearest point. Over the interval: the predicted score across the "
                      "parameter's 95 % interval (for a population, across its devices' values). Each "
                      "axis moves one property with the others at the agent's values, so the "
                      "predictions are one property at a time.")
    sec.text(f"Map: `{tol_path}` (agent `{tol.get('checkpoint', '?')}`, {tol.get('draws', '?')} device "
             f"draw(s) x {tol.get('games', '?')} greedy games of test seed {tol.get('test_seed', '?')} per "
             f"point). With few draws per point the map is noisy: differences of a few points between "
             "neighbouring values can be chance.")
    if note:
        sec.text(f"Warning: {note}.")
    sec.command(sh("mstpn", "pong", "tolerance", tol.get("checkpoint", DEFAULT_CHECKPOINT), "--out",
                   tol_path.parent))
    if limiting is not None:
        sec.summary = (f"lowest: {limiting['property']} → {limiting['predicted']:+.1f} "
                       f"(agent's own value {limiting['agent_score']:+.1f})"
                       if limiting["agent_score"] is not None else
                       f"lowest: {limiting['property']} → {limiting['predicted']:+.1f}")


def finetune_on_device(checkpoint: str | os.PathLike, params: SrTiO3Params, frames: int, games: int,
                       seed: int = 0, max_frames: int = MAX_FRAMES, progress: bool = False
                       ) -> tuple[dict, bytes]:
    """Fine-tune the agent ``frames`` frames on draw 0 of ``params`` (the chip :func:`play_on_device`
    plays), then play it there: (the play result with ``finetune`` facts, the fine-tuned agent file's
    bytes)."""
    import contextlib
    import io

    from mstpn.rl.finetune import FINETUNE_LR, finetune

    with tempfile.TemporaryDirectory() as tmp:
        # the run's log lines (agent, init_from) go to stderr with the progress, else nowhere
        with contextlib.redirect_stdout(sys.stderr if progress else io.StringIO()):
            path = finetune(checkpoint, Path(tmp) / "run", frames=frames, device_params=params, seed=0)
        run = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        result = play_on_device(path, None, games, seed, max_frames)  # its own chip: draw 0 of params
        data = path.read_bytes()
    result["finetune"] = {"frames": run["frames"], "requested_frames": frames, "lr": FINETUNE_LR,
                          "wall_s": run["wall_s"], "training_score_mean20": run["score_mean20"]}
    return result, data


def _agent_section(sec: Section, played: dict | None, games: int, checkpoint: Path, params_cmd: str,
                   seed: int, max_frames: int, positions: list[dict], tuned: dict | None = None,
                   out: Path | None = None) -> None:
    cmd = sh("mstpn", "pong", "eval", checkpoint, "--device-params", params_cmd,
             "--episodes", max(games, 1), "--seed", seed)
    sec.command(cmd)
    if played is None:
        sec.status = "skipped"
        sec.text("Skipped (`--games 0`): no games were played; the verdict rests on the tolerance map only.")
        sec.summary = "skipped (--games 0)"
        return
    own = [p["agent_score"] for p in positions if p["agent_score"] is not None]
    ref = (f" The map's score at the agent's own device (a fresh draw, its games) is {own[0]:+.1f}."
           if own else "")
    cut = (f" Games were cut at {max_frames:,} emulator frames." if max_frames < MAX_FRAMES else "")
    sec.text(f"The agent `{checkpoint}` keeps its learned weights, biases, plasticity and bias voltages; "
             f"its {played['energy']['synapses']:,} synapses are devices drawn from these parameters "
             f"(draw 0, as `mstpn pong eval --device-params`).{ref}{cut}")
    rows = [(played, "as trained")] + ([(tuned, f"fine-tuned {tuned['finetune']['frames']:,} frames")]
                                       if tuned else [])
    sec.table(["agent", "greedy test games", "mean score", "lost", "scores", "network steps per game"], [
        [label, str(len(r["scores"])), f"{r['mean_score']:+.2f}", str(r["lost"]),
         ", ".join(f"{s:+.0f}" for s in r["scores"]), fmt(float(np.mean(r["episode_steps"])))]
        for r, label in rows],
        caption=f"Test seed {seed}; greedy play is deterministic, so a few games can repeat one rally. "
                "More games: --games N."
                + ("" if tuned else " Fine-tuning on the device: --finetune-frames N."))
    sec.summary = f"{played['mean_score']:+.2f} over {len(played['scores'])} game(s), {played['lost']} lost"
    if tuned:
        ft = tuned["finetune"]
        sec.text(f"Fine-tuned: the agent trained {ft['frames']:,} more emulator frames on this same chip "
                 f"(its own training recipe, learning rate {ft['lr']:g} decaying linearly to 0, no "
                 f"validation; {ft['wall_s']:.0f} s here), then played the same games. The "
                 f"fine-tuned agent is `{(out or Path('.')) / 'finetuned_agent.pt'}`.")
        sec.command(sh("mstpn", "pong", "eval", (out or Path(".")) / "finetuned_agent.pt", "--episodes",
                       games, "--seed", seed))
        sec.summary += f"; {tuned['mean_score']:+.2f} after fine-tuning {ft['frames']:,} frames"


GPU_NAMES = {"a100": "A100", "h100": "H100", "h200": "H200"}


def _energy_section(sec: Section, played: dict | None, paper: dict, paper_preset: dict, png: Path | None,
                    checkpoint: Path, params_cmd: str, games: int, seed: int) -> None:
    mem = paper["memristive_mj"]
    ref = paper_preset["memristive_mj"]
    if played is not None:
        rep = played["energy"]
        syn, system = rep["memristive_mj"]["synaptic"], rep["memristive_mj"]["system"]
        if png is not None:
            sec.figure(png, "Energy per game of the agent's synapses on this device (the games above), "
                            "against the GPU presets.")
        steps = fmt(float(np.mean(rep["steps_per_game"])))
        hold = fmt(syn["hold_ohmic"] + syn["hold_leak"])
        sec.text(f"**From the games played** ({rep['games']} game(s), {steps} network steps each; the "
                 f"agent's learned biases and real write sparsity, {100 * rep['write_density']:.2f} % of "
                 f"synapse-steps written; differential pairs): "
                 f"memristive synapses {fmt(syn['total'])} mJ per game (hold {hold}, "
                 f"writes {fmt(syn['pulses'])}, reads {fmt(syn['read'])}), {fmt(system['total'])} mJ with "
                 "converters, drivers and the neuron side.")
        rows = []
        for key, by_precision in rep["gpu_mj"].items():
            for precision, by_mode in by_precision.items():
                for mode in ("optimal", "as_written"):
                    name = f"{key}.{precision}.{mode}"
                    rows.append([f"{GPU_NAMES.get(key, key)} {precision} {mode.replace('_', ' ')}",
                                 fmt(by_mode[mode]), f"{rep['ratios']['synaptic'][name]:,.1f}x",
                                 f"{rep['ratios']['system'][name]:,.1f}x"])
        sec.table(["GPU, same synaptic operations", "mJ per game", "GPU / memristive (synaptic)",
                   "GPU / memristive (system)"], rows)
    sec.text("**In the paper's accounting** (169,984 synapses, one device each, 0.6 V bias on every "
             "synapse for a 48.7 s game, dense one-pulse writes every 60 Hz step):")
    gpu_rows = []
    for key, by_precision in paper["gpu_mj"].items():
        for precision in ("fp16", "fp32"):
            opt = by_precision[precision]["optimal"]
            gpu_rows.append([f"{GPU_NAMES.get(key, key)} {precision} optimal", fmt(opt),
                             f"{opt / mem['total']:,.1f}x", f"{opt / ref['total']:,.1f}x"])
    sec.table(["per game", "mJ", "GPU / this device", "GPU / preset device"], [
        ["memristive total, this device", fmt(mem["total"], 4), "", ""],
        ["of which bias hold", fmt(mem["decay"], 4), "", ""],
        ["of which writes", fmt(mem["writes"], 4), "", ""],
        ["memristive total, the SrTiO3 preset", fmt(ref["total"], 4), "", ""],
        *gpu_rows], caption="In this accounting only the device's leakage (p_leak_ref, v_leak_ref) and "
                            "its write conductance (p_leak_ref / v_leak_ref²) enter; a fit from traces "
                            "leaves the leakage at --base or the preset, so measure it separately.")
    cmd = [sh("mstpn", "energy", "--paper", "--device-params", params_cmd)]
    if games:
        cmd.insert(0, sh("mstpn", "energy", checkpoint, "--device-params", params_cmd, "--episodes", games,
                         "--seed", seed))
    sec.command(*cmd)
    if played is not None:
        a100 = played["energy"]["ratios"]["synaptic"]["a100.fp16.optimal"]
        sec.summary = (f"{fmt(played['energy']['memristive_mj']['synaptic']['total'])} mJ/game in play, "
                       f"{a100:.0f}x below A100 fp16 optimal")
    else:
        sec.summary = (f"paper's accounting: {fmt(mem['total'])} mJ/game, "
                       f"{paper['ratio_vs_a100_fp16_optimal']:.0f}x below A100 fp16 optimal")


def compact_png(data: bytes) -> bytes:
    """The figure on a 256-colour palette, without dithering: about a third of the bytes for a
    matplotlib plot, which keeps the self-contained HTML small."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _progress(enabled: bool) -> Callable[[str], None]:
    def say(text: str) -> None:
        if enabled:
            print(f"assess: {text}", file=sys.stderr, flush=True)

    return say


def assess_device(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, games: int = DEFAULT_GAMES,
                  seed: int = 0, checkpoint: str | os.PathLike = DEFAULT_CHECKPOINT,
                  tolerance: str | os.PathLike = DEFAULT_TOLERANCE, population: bool = False,
                  base: SrTiO3Params | None = None, pulse_threshold: float = 0.5, t0: float = 1e-3,
                  max_frames: int = MAX_FRAMES, progress: bool = False, finetune_frames: int = 0) -> dict:
    """Assess a device (a parameter file, or traces to fit) and write the report into ``out``.

    With ``finetune_frames`` > 0 the agent is also fine-tuned that many frames on the device and
    scored again (``finetuned_agent.pt`` is written too).

    Writes ``report.html`` (self-contained), ``report.md`` with its figures, ``assess.json`` (every
    number), ``device_functions.json`` and, after a fit, ``params.json`` (loadable with
    ``--device-params``). Returns the content of ``assess.json``. Raises :class:`UserError` on bad
    input before anything is written.
    """
    from mstpn.tasks.pong import SPLIT_STRIDE

    say = _progress(progress)
    out, checkpoint, tol_path = Path(out), Path(checkpoint), Path(tolerance)
    if isinstance(games, bool) or not isinstance(games, int) or not 0 <= games <= SPLIT_STRIDE:
        raise UserError(f"--games: must be an integer in [0, {SPLIT_STRIDE}], got {games!r}")
    if not 0 <= seed < 1000:
        raise UserError(f"--seed: must be a test seed in [0, 999], got {seed}")
    if max_frames < 1:
        raise UserError(f"--max-frames: must be >= 1, got {max_frames}")
    from mstpn.rl.finetune import check_finetune_frames

    if check_finetune_frames(finetune_frames) and not games:
        raise UserError("--finetune-frames: the fine-tuned agent is scored in games; give --games >= 1")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    _split_inputs(inputs)
    tol = load_tolerance_map(tol_path)
    if games:
        _check_checkpoint(checkpoint)

    started = time.perf_counter()
    clock = [started]

    def lap() -> float:
        now = time.perf_counter()
        seconds, clock[0] = now - clock[0], now
        return seconds

    sections = {key: Section(key, title) for key, title in (
        ("verdict", "Verdict"), ("device", "The six synaptic functions of this device"),
        ("fit", "Fit and uncertainties"), ("tolerance", "Where the device sits on the agent's tolerance map"),
        ("agent", "The agent's score on this device"), ("energy", "Energy per game against GPUs"))}

    say("fitting" if Path(inputs[0]).suffix.lower() == ".csv" else "reading the parameters")
    device = load_device(inputs, population=population, base=base, pulse_threshold=pulse_threshold, t0=t0)
    fit_png = None
    if device.kind == "fit":
        from mstpn.devices.fit_plot import render_fit_png

        fit_png = render_fit_png(device.fit)
    sections["fit"].seconds = lap()

    say("the six synaptic functions")
    from mstpn.devices.demo import run_device_demo

    with tempfile.TemporaryDirectory() as tmp:
        demo = run_device_demo(tmp, device.params, seed=seed)
        demo_png = (Path(tmp) / "device_functions.png").read_bytes()
    sections["device"].seconds = lap()

    say("locating the device on the tolerance map")
    positions = locate_on_map(tol, device)
    limiting = limiting_property(positions)
    from mstpn.report.assess_plot import render_assessment_png

    tol_png = render_assessment_png(tol, positions, None if limiting is None else limiting["property"])
    map_note = _map_agent_note(tol_path, checkpoint)
    sections["tolerance"].seconds = lap()

    played = None
    if games:
        say(f"playing {games} greedy test game(s) on the device")
        played = play_on_device(checkpoint, device.params, games, seed, max_frames)
    tuned, tuned_agent = None, None
    if finetune_frames:
        say(f"fine-tuning {finetune_frames:,} frames on the device (~4 ms per frame), then "
            f"{games} game(s) again")
        tuned, tuned_agent = finetune_on_device(checkpoint, device.params, finetune_frames, games, seed,
                                                max_frames, progress)
    sections["agent"].seconds = lap()

    say("energy")
    from mstpn.energy.paper import reproduce_paper

    paper = reproduce_paper(params=device.params)
    paper_preset = reproduce_paper()
    energy_png = None
    if played is not None:
        from mstpn.report.energy_plot import render_report_png

        energy_png = render_report_png(played["energy"], title="This device under the agent, per Pong game")
    sections["energy"].seconds = lap()

    verdict = verdict_line(positions, limiting, tol, played, max_frames,
                           None if tuned is None else {"mean_score": tuned["mean_score"],
                                                       "finetune_frames": tuned["finetune"]["frames"]})
    summary = {
        "inputs": device.inputs, "kind": device.kind, "params": device.params.to_dict(),
        "origin": device.origin,
        "intervals_95": {k: list(v) for k, v in device.intervals.items()},
        "not_identified": device.not_identified,
        "residual_rel_rms": (float(device.fit.residual_rel_rms) if device.kind == "fit" else None),
        "tolerance_map": str(tol_path), "positions": positions,
        "limiting_property": None if limiting is None else limiting["property"],
        "verdict": verdict, "checkpoint": str(checkpoint), "games": games, "seed": seed,
        "max_frames": max_frames,
        "played": None if played is None else {k: played[k] for k in
                                               ("mean_score", "scores", "lost", "episode_steps",
                                                "episode_frames")},
        "finetune_frames": finetune_frames,
        "played_finetuned": None if tuned is None else {k: tuned[k] for k in
                                                        ("mean_score", "scores", "lost", "episode_steps",
                                                         "episode_frames", "finetune")},
        "energy_played_mj": None if played is None else {
            "memristive": played["energy"]["memristive_mj"], "gpu": played["energy"]["gpu_mj"],
            "ratios": played["energy"]["ratios"]},
        "energy_paper_accounting_mj": {"memristive": paper["memristive_mj"],
                                       "memristive_preset": paper_preset["memristive_mj"],
                                       "gpu": paper["gpu_mj"]},
    }

    # ---- everything is computed: write the files
    say(f"writing {out}")
    figures = {"device_functions.png": demo_png, "tolerance.png": tol_png}
    if fit_png is not None:
        figures["fit.png"] = fit_png
    if energy_png is not None:
        figures["energy.png"] = energy_png
    for name, data in figures.items():
        atomic_write_bytes(out / name, compact_png(data))
    atomic_write_text(out / "device_functions.json", json.dumps(demo, indent=1) + "\n")
    if tuned_agent is not None:
        atomic_write_bytes(out / "finetuned_agent.pt", tuned_agent)
    if device.kind == "fit":
        from mstpn.devices.fit import write_fit_json

        write_fit_json(device.fit, out / "params.json")
    elif device.kind == "population":
        from mstpn.devices.population import write_population_json

        write_population_json(device.fit, out / "params.json")
    params_cmd = device.inputs[0] if device.kind == "params" else str(out / "params.json")

    sec = sections["verdict"]
    sec.text(f"**{verdict}**")
    ranked = sorted((p for p in positions if p["device_property"] and p["predicted"] is not None),
                    key=lambda p: p["predicted"])
    sec.table(["rank", "device property", "this device", "predicted score"],
              [[str(i + 1), f"{p['name']} (`{p['property']}`)", _value_text(p["property"], p["value"]),
                f"{p['predicted']:+.1f}"] for i, p in enumerate(ranked)],
              caption="Device properties ranked by the score the tolerance map predicts at the device's "
                      "value (lowest first). The driver settings stay at the agent's.")
    sec.summary = verdict.removeprefix("Verdict: ")
    sec.status = "passed"
    _device_section(sections["device"], demo, out / "device_functions.png", params_cmd, out, seed)
    _fit_section(sections["fit"], device, out / "fit.png" if fit_png else None, out)
    _tolerance_section(sections["tolerance"], tol, tol_path, positions, limiting, out / "tolerance.png",
                       map_note)
    _agent_section(sections["agent"], played, games, checkpoint, params_cmd, seed, max_frames, positions,
                   tuned, out)
    _energy_section(sections["energy"], played, paper, paper_preset,
                    out / "energy.png" if energy_png else None, checkpoint, params_cmd, games, seed)
    for s in sections.values():
        if s.status == "pending":
            s.status = "passed"

    from mstpn.report.machine import machine_facts

    summary["seconds"] = time.perf_counter() - started
    rerun = sh("mstpn", "device", "assess", *device.inputs, "--out", out, "--games", games, "--seed", seed,
               *(["--finetune-frames", finetune_frames] if finetune_frames else []),
               *(["--population"] if population else []),
               *(["--checkpoint", checkpoint] if checkpoint != DEFAULT_CHECKPOINT else []),
               *(["--tolerance", tol_path] if tol_path != DEFAULT_TOLERANCE else []))
    doc = Document(title=f"Device assessment: {', '.join(Path(p).name for p in device.inputs)}",
                   subtitle=verdict,
                   facts=[*machine_facts(), ("assessment time", f"{summary['seconds']:.1f} s")],
                   rerun_all=rerun, sections=list(sections.values()))
    atomic_write_json(out / "assess.json", summary)
    atomic_write_text(out / "report.md", render_markdown(doc, out))
    atomic_write_text(out / "report.html", render_html(doc))
    return summary
