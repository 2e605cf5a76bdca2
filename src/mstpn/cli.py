"""The `mstpn` command line: one entry point, one subcommand per job.

Each subcommand's handler lives beside its parser here and calls the library; bad input raises
:class:`mstpn.errors.UserError`, which becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from mstpn.errors import UserError

if TYPE_CHECKING:  # the command line imports torch only for the commands that need it
    from mstpn.rl.run import TrainerConfig

EPILOG = """examples:
  mstpn device demo --out out/device          the six synaptic functions of one device, as a figure
  mstpn device simulate --protocol characterise --out trace.csv
  mstpn device fit trace.csv --out params.json --plot fit.png
  mstpn device assess trace.csv --out out/assess  is my device good enough? one report with a verdict
  mstpn art --model mstpn --epochs 20 --json art.json     m-STPN on associative retrieval
  mstpn pong train --core mstpn --out runs/mstpn          train a Pong agent (resume with --resume)
  mstpn energy --paper                                    the paper's energy table, ours beside it
  mstpn reproduce --out out/demo                          the whole story as one report
"""


# ---------------------------------------------------------------------------------------- device
def _add_device(sub: argparse._SubParsersAction) -> None:
    device = sub.add_parser("device", help="simulate, characterise and fit a memristor",
                            description="Work with one memristor model: demo, simulate traces, fit data.")
    dsub = device.add_subparsers(dest="device_command", required=True, metavar="COMMAND")
    import textwrap

    from mstpn.devices.protocols import PROTOCOLS

    protocol_lines = "\n".join(f"  {name:15s} {(fn.__doc__ or '').strip().splitlines()[0]}"
                               for name, fn in PROTOCOLS.items())
    params_help = ("device parameters as JSON (SrTiO3Params fields, e.g. written by `mstpn device fit`); "
                   "default: the SrTiO3 preset of Weilenmann et al. 2024")

    demo = dsub.add_parser(
        "demo", help="the six synaptic functions of one simulated device: figure + JSON",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
                    "Simulate one memristor (with device-to-device, cycle-to-cycle and read noise) "
                    "through one protocol per synaptic function: long-term memory (retention), "
                    "transmission (I = G V), LTP/LTD pulse trains, short-term memory (volatile decay), "
                    "paired-pulse facilitation and meta-plasticity (decay time constant vs bias). "
                    "Writes DIR/device_functions.png and DIR/device_functions.json (figures of merit: "
                    "fitted tau per bias, PPF index per interval, LTP/LTD nonlinearity, energy per "
                    "pulse, retention drift, read linearity).", 100),
        epilog="examples:\n  mstpn device demo --out out/device\n"
               "  mstpn device demo --out out/mydevice --params params.json --seed 3\n")
    demo.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    demo.add_argument("--params", metavar="P.json", help=params_help)
    demo.add_argument("--seed", type=int, default=0, help="seed of the device draw and its noise (0)")
    demo.set_defaults(handler=_device_demo)

    simulate = dsub.add_parser(
        "simulate", help="write a synthetic measurement trace (CSV) of one protocol",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
                    "Run a measurement protocol on one simulated device and write what a source-measure "
                    "unit would record: a CSV with header time_s,voltage_v,current_a. Pulses are samples "
                    "with |V| >= 0.5 V (two per pulse, at its start and end); all other samples are "
                    "reads at the bias held on the device, G = I / V. The device draws its own "
                    "device-to-device variation from the seed (set d2d_sigma to 0 in --params for a "
                    "nominal device) and has the model's cycle-to-cycle and read noise.", 100)
                    + f"\n\nprotocols:\n{protocol_lines}",
        epilog="examples:\n"
               "  mstpn device simulate --protocol characterise --out trace.csv\n"
               "  mstpn device simulate --protocol metaplasticity --params params.json --seed 2 "
               "--noise 0.02 --out meta.csv\n"
               "  mstpn device fit trace.csv --out fitted.json\n")
    simulate.add_argument("--protocol", required=True, metavar="NAME",
                          help=f"one of: {', '.join(PROTOCOLS)}")
    simulate.add_argument("--params", metavar="P.json", help=params_help)
    simulate.add_argument("--seed", type=int, default=0, help="seed of the device draw and all noise (0)")
    simulate.add_argument("--noise", type=float, default=0.0, metavar="REL",
                          help="extra relative Gaussian instrument noise on every current sample, on top "
                               "of the model's read noise (default 0)")
    simulate.add_argument("--ideal", action="store_true",
                          help="noise-free nominal device: no d2d, c2c or read noise (--noise still applies)")
    simulate.add_argument("--out", required=True, metavar="trace.csv", help="trace file to write (atomic)")
    simulate.set_defaults(handler=_device_simulate)

    _add_device_fit(dsub)  # `mstpn device fit`: its own block below
    _add_device_assess(dsub)  # `mstpn device assess`: its own block below


def _device_params(path: str | None):  # -> SrTiO3Params
    from mstpn.devices.params import load_params, srtio3_weilenmann2024

    return srtio3_weilenmann2024() if path is None else load_params(path)


def _device_demo(args: argparse.Namespace) -> int:
    from mstpn.devices.demo import run_device_demo

    params = _device_params(args.params)
    try:
        result = run_device_demo(args.out, params, seed=args.seed)
    except OSError as exc:
        raise UserError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
    meta = result["meta_plasticity"]
    first, last = meta["levels"][0], meta["levels"][-1]
    print(f"wrote {args.out}/device_functions.png and device_functions.json: decay tau "
          f"{first['tau_fit_s']:.3g} s at {first['v_b']:+.2f} V to {last['tau_fit_s']:.3g} s at "
          f"{last['v_b']:+.2f} V; PPF index up to "
          f"{max(result['short_term_facilitation']['ppf_index_percent']):.0f} %")
    return 0


def _device_simulate(args: argparse.Namespace) -> int:
    import math

    from mstpn.devices.protocols import run_protocol
    from mstpn.devices.trace import segment, write_trace_csv

    if not (math.isfinite(args.noise) and 0.0 <= args.noise <= 1.0):
        raise UserError(f"--noise: must be a relative sigma in [0, 1], got {args.noise}")
    params = _device_params(args.params)
    run = run_protocol(args.protocol, params, seed=args.seed, noise=not args.ideal,
                       current_noise=args.noise)
    try:
        write_trace_csv(run.trace, args.out)
    except OSError as exc:
        raise UserError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
    pulses = sum(1 for ev in segment(run.trace) if type(ev).__name__ == "Pulse")
    print(f"wrote {args.out}: protocol {args.protocol}, {len(run.trace)} samples, {pulses} pulses, "
          f"{run.trace.time_s[-1]:.4g} s")
    return 0


# ---------------------------------------------------------------------------------------- device fit
FIT_EPILOG = """examples:
  mstpn device simulate --protocol characterise --out trace.csv
  mstpn device fit trace.csv --out params.json --plot fit.png
  mstpn device fit day1.csv day2.csv --out params.json --pulse-threshold 0.8 --base mine.json
  mstpn device fit dev1.csv dev2.csv dev3.csv dev4.csv --population --out population.json

A trace is a CSV with header time_s,voltage_v,current_a. Samples with |V| >= the pulse threshold are
pulses (a pulse needs a sample at its start and one at its end: its width is their time difference);
the others are bias/read phases at |V| < threshold, V != 0, where G = I / V. The fit needs pulses at
>= 3 amplitudes and >= 2 widths, and decays read after pulses at >= 2 bias levels.
"""


def _add_device_fit(dsub: argparse._SubParsersAction) -> None:
    fit = dsub.add_parser(
        "fit", help="fit the compact model to measured traces (CSV in, parameter JSON out)",
        description="Fit the SrTiO3 compact model to one or more source-measure-unit traces and write\n"
                    "every SrTiO3Params field (fitted and fixed) plus residual_rel_rms as JSON.",
        epilog=FIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("traces", nargs="+", metavar="TRACE.csv", help="trace files, fitted together")
    fit.add_argument("--out", required=True, metavar="PARAMS.json", help="parameter file to write")
    fit.add_argument("--plot", metavar="FIT.png", help="also write a figure of data and fitted model")
    fit.add_argument("--pulse-threshold", type=float, default=0.5, metavar="V",
                     help="|V| at or above this is a pulse (default 0.5 V)")
    fit.add_argument("--t0", type=float, default=1e-3, metavar="S",
                     help="reference pulse width giving a_st and a_lt their units; fixed (default 1e-3 s)")
    fit.add_argument("--base", metavar="P.json",
                     help="parameters not fitted (leakage, variability) come from here (default: preset)")
    fit.add_argument("--population", action="store_true",
                     help="each trace file is another device (>= 3): fit each, then write one parameter "
                          "file of the population, d2d_sigma from the devices' spread, with every "
                          "device's fit")
    fit.set_defaults(handler=_device_fit)


def _device_fit(args: argparse.Namespace) -> int:
    from mstpn.atomic import atomic_write_bytes
    from mstpn.devices.fit import fit_traces, write_fit_json
    from mstpn.devices.params import load_params, srtio3_weilenmann2024
    from mstpn.devices.trace import read_trace_csv

    base = load_params(args.base) if args.base else srtio3_weilenmann2024()
    traces = [read_trace_csv(path, args.pulse_threshold) for path in args.traces]
    options = {"base": base, "t0": args.t0, "pulse_threshold": args.pulse_threshold}
    if args.population:
        return _device_fit_population(args, traces, options)
    result = fit_traces(traces, **options)
    png = None
    if args.plot:
        from mstpn.devices.fit_plot import render_fit_png

        png = render_fit_png(result)
    try:
        write_fit_json(result, args.out)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write the parameter file ({exc.strerror})") from None
    if png is not None:
        try:
            atomic_write_bytes(args.plot, png)
        except OSError as exc:
            from pathlib import Path

            Path(args.out).unlink(missing_ok=True)  # all or nothing
            raise UserError(f"{args.plot}: cannot write the plot ({exc.strerror})") from None
    p = result.params
    print(f"fitted {len(traces)} trace(s), {len(result.increments['v'])} pulses: tau0 {p.tau0:.4g} s, "
          f"v_tau {p.v_tau:.4g} V, a_st {p.a_st:.4g} S, v0 {p.v0:.4g} V, beta {p.beta:.4g}, "
          f"a_lt {p.a_lt:.4g} S, v_th {p.v_th:.4g} V, g {p.g_min:.3g}-{p.g_max:.3g} S; "
          f"residual {100 * result.residual_rel_rms:.2f} % RMS; wrote {args.out}"
          + (f" and {args.plot}" if args.plot else ""))
    spans = [f"{name} {lo:.3g}..{hi:.3g}" for name, (lo, hi) in result.intervals.items()]
    print("95 % intervals: " + ", ".join(spans))
    if result.correlations:
        print("strongest correlations: " + ", ".join(f"{a}~{b} {r:+.2f}" for a, b, r in result.correlations))
    read, c2c, floor = result.noise.get("read_sigma"), result.noise.get("c2c_sigma"), result.noise_floor
    if read is not None and c2c is not None:
        print(f"noise from the data: read_sigma {p.read_sigma:.3g} ({read.source}); "
              f"c2c_sigma {p.c2c_sigma:.3g} "
              + (f"(from {c2c.count} increments of {c2c.groups} groups of repeated identical pulses)"
                 if c2c.identified else "(base value: the traces cannot identify it)"))
    if floor is not None:
        print(f"noise floor {'reached' if floor.reached else 'NOT reached'}: residual "
              f"{100 * floor.residual_rel_rms:.2f} % RMS, noise alone {100 * floor.expected_rel_rms:.2f} % "
              f"(limit {100 * floor.limit_rel_rms:.2f} %)")
    for note in result.notes:
        print(note if note.startswith("warning: ") else f"note: {note}")
    return 0


def _device_fit_population(args: argparse.Namespace, traces: list, options: dict) -> int:
    from mstpn.devices.population import fit_population, write_population_json

    if args.plot:
        raise UserError("--plot: not available with --population; fit one device to see its figure")
    result = fit_population([[t] for t in traces], **options)
    try:
        write_population_json(result, args.out)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write the parameter file ({exc.strerror})") from None
    p = result.params
    spreads = ", ".join(f"{name} {sigma:.3g}" for name, sigma in result.log_sigma.items())
    print(f"fitted {len(result.devices)} devices: d2d_sigma {p.d2d_sigma:.3g} (ln spread per field: "
          f"{spreads}); tau0 {p.tau0:.4g} s, a_st {p.a_st:.4g} S, g {p.g_min:.3g}-{p.g_max:.3g} S; "
          f"worst device residual {100 * max(d.residual_rel_rms for d in result.devices):.2f} % RMS; "
          f"wrote {args.out}")
    for note in result.notes:
        print(f"note: {note}")
    return 0


# ---------------------------------------------------------------------------------------- device assess
ASSESS_EPILOG = """examples:
  mstpn device assess params.json --out out/assess                 a parameter file (e.g. from device fit)
  mstpn device assess trace.csv more.csv --out out/assess          fit the traces first, then assess
  mstpn device assess dev1.csv dev2.csv dev3.csv --population --out out/assess   one device per file
  mstpn device assess params.json --out out/quick --games 0        no games: tolerance map and energy only
  mstpn device assess params.json --out out/assess --games 10 --seed 1
  mstpn device assess params.json --out out/tuned --finetune-frames 100000   also fine-tuned (~7 min)

Writes DIR/report.html (self-contained), DIR/report.md with its figures, DIR/assess.json (every
number) and, after a fit, DIR/params.json. The verdict names the device property on which the
device's value predicts the agent's lowest score on its tolerance map (--tolerance, made by
`mstpn pong tolerance`). Bad input: one line on stderr, exit code 2, nothing written.
"""


def _add_device_assess(dsub: argparse._SubParsersAction) -> None:
    import textwrap

    from mstpn.report.assess import DEFAULT_CHECKPOINT, DEFAULT_GAMES, DEFAULT_TOLERANCE, MAX_FRAMES

    assess = dsub.add_parser(
        "assess", help="is my device good enough? one report: functions, fit, tolerance, score, energy",
        description=textwrap.fill(
            "Assess one memristor for the trained m-STPN Pong agent: fit its traces (or read a parameter "
            "file), then write one report with the device's six synaptic functions, the fit and its "
            "uncertainties, where the device sits on each axis of the agent's tolerance map, the agent's "
            "greedy score on the device, the energy per game against the GPU presets, and a verdict line "
            "naming the limiting property.", 100),
        epilog=ASSESS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    assess.add_argument("inputs", nargs="+", metavar="PARAMS.json | TRACE.csv",
                        help="one parameter file, or one or more traces (fitted together)")
    assess.add_argument("--out", required=True, metavar="DIR", help="report folder (created if missing)")
    assess.add_argument("--games", type=int, default=DEFAULT_GAMES, metavar="N",
                        help=f"greedy test games on the device (default {DEFAULT_GAMES}; 0 skips them)")
    assess.add_argument("--seed", type=int, default=0,
                        help="test seed of the games, and seed of the simulated device in the functions (0)")
    assess.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), metavar="CKPT",
                        help=f"m-STPN agent to play (default {DEFAULT_CHECKPOINT})")
    assess.add_argument("--tolerance", default=str(DEFAULT_TOLERANCE), metavar="tolerance.json",
                        help=f"the agent's tolerance map (default {DEFAULT_TOLERANCE})")
    assess.add_argument("--max-frames", type=int, default=MAX_FRAMES, metavar="N",
                        help=f"cut each game at N emulator frames (default {MAX_FRAMES:,})")
    assess.add_argument("--population", action="store_true",
                        help="each trace file is another device (>= 3): assess their population")
    assess.add_argument("--pulse-threshold", type=float, default=0.5, metavar="V",
                        help="traces: |V| at or above this is a pulse (default 0.5 V)")
    assess.add_argument("--base", metavar="P.json",
                        help="traces: parameters not fitted come from here (default: the preset)")
    assess.add_argument("--finetune-frames", type=int, default=0, metavar="N",
                        help="also fine-tune the agent N emulator frames on the device's chip and play the "
                             "games again (lr 1e-4 decaying to 0; ~4 ms per frame on one core, e.g. "
                             "100,000 frames: ~7 min); the report shows both scores (default 0: none)")
    assess.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    assess.set_defaults(handler=_device_assess)


def _device_assess(args: argparse.Namespace) -> int:
    from mstpn.report.assess import assess_device

    base = _device_params(args.base) if args.base else None
    summary = assess_device(args.inputs, args.out, games=args.games, seed=args.seed,
                            checkpoint=args.checkpoint, tolerance=args.tolerance, population=args.population,
                            base=base, pulse_threshold=args.pulse_threshold, max_frames=args.max_frames,
                            progress=not args.no_progress, finetune_frames=args.finetune_frames)
    print(summary["verdict"])
    print(f"wrote {args.out}/report.html, report.md and assess.json in {summary['seconds']:.1f} s")
    return 0


# ---------------------------------------------------------------------------------------- art
def _add_art(sub: argparse._SubParsersAction) -> None:
    from mstpn.tasks.art_train import MODELS

    art = sub.add_parser(
        "art", help="train a model on associative retrieval (STPN, m-STPN, LSTM, RNN)",
        description="Train one parameter-matched model on the associative retrieval task and write "
                    "its test accuracy per epoch and the final one (at the best validation epoch) as JSON.")
    art.add_argument("--model", required=True, choices=MODELS, help="recurrent core")
    art.add_argument("--epochs", type=int, default=50, help="most epochs (default 50)")
    art.add_argument("--seed", type=int, default=0, help="seed of data, init, order and noise")
    art.add_argument("--train-size", type=int, default=100_000, help="training sequences (100000)")
    art.add_argument("--val-size", type=int, default=10_000, help="validation sequences (10000)")
    art.add_argument("--test-size", type=int, default=20_000, help="test sequences (20000)")
    art.add_argument("--hidden-size", type=int, default=0, help="hidden units (0: parameter-matched)")
    art.add_argument("--patience", type=int, default=0,
                     help="stop after this many epochs without a better validation accuracy (0: never)")
    art.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    art.add_argument("--no-progress", action="store_true", help="no progress bar")
    art.add_argument("--json", required=True, metavar="OUT", help="result file (written atomically)")
    art.set_defaults(handler=_art)

    table = sub.add_parser("art-table", help="aggregate `mstpn art` JSON results into a markdown table",
                           description="Mean and spread of final test accuracy per model over seeds.")
    table.add_argument("paths", nargs="+", help="result JSON files or folders holding them")
    table.add_argument("--out", help="also write the table to this file")
    table.set_defaults(handler=_art_table)


def _art(args: argparse.Namespace) -> int:
    import torch

    from mstpn.tasks.art_train import ARTTrainConfig, run

    if args.threads < 0:
        raise UserError(f"--threads: must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = ARTTrainConfig(model=args.model, hidden_size=args.hidden_size, epochs=args.epochs,
                            seed=args.seed, train_size=args.train_size, val_size=args.val_size,
                            test_size=args.test_size, patience=args.patience)
    record = run(config, args.json, progress=not args.no_progress, log=lambda line: print(line, flush=True))
    print(f"{args.model}: {record['parameters']} parameters, final test accuracy "
          f"{record['final_test_acc']:.4f} (epoch {record['best_epoch']} of {record['epochs_run']}); "
          f"wrote {args.json}")
    return 0


def _art_table(args: argparse.Namespace) -> int:
    from mstpn.tasks.art_report import art_table, load_results

    text = art_table(load_results(args.paths))
    print(text)
    if args.out:
        from mstpn.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


# ---------------------------------------------------------------------------------------- pong
PONG_EPILOG = """examples:
  mstpn pong train --core mstpn --algo a2c --frames 10000000 --out runs/mstpn
  mstpn pong train --out runs/mstpn --resume          continue a stopped run where it checkpointed
  mstpn pong train --out runs/mstpn --resume --frames 20000000   ... and raise its budget
  mstpn pong train --out runs/mstpn --resume --device cuda      ... on a GPU (threads and device may change)
  mstpn pong export runs/mstpn --out checkpoints/pong_mstpn.pt   the agent alone, and its learning curve
  mstpn pong eval checkpoints/pong_mstpn.pt --episodes 10 --gif game.gif --json eval.json
  mstpn pong eval checkpoints/pong_mstpn.pt --seed 1 --mode sticky --json sticky.json   test seed 1, sticky
  mstpn pong eval checkpoints/pong_mstpn.pt --split raw --seed 0 --json raw.json   the env seed as given
  mstpn pong eval checkpoints/pong_mstpn.pt --device-params fitted.json --json mine.json   your device
  tensorboard --logdir runs                           watch the learning curves
"""


def _add_pong(sub: argparse._SubParsersAction) -> None:
    pong = sub.add_parser("pong", help="train and evaluate Pong agents",
                          description="Train recurrent Pong agents (m-STPN, STPN, LSTM) and play them.",
                          epilog=PONG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = pong.add_subparsers(dest="pong_command", required=True, metavar="COMMAND")
    train = psub.add_parser("train", help="train an agent (checkpoints, TensorBoard, resume)",
                            epilog=PONG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Defaults are None so that --resume can tell a flag typed from one left out (see mstpn.rl.resume);
    # a new run fills them in from the configuration classes.
    train.add_argument("--core", choices=("mstpn", "stpn", "lstm"),
                       help="recurrent core (default mstpn: SrTiO3 synapses, non-idealities on)")
    train.add_argument("--algo", choices=("a2c", "ppo"), help="training algorithm (default a2c)")
    train.add_argument("--frames", type=int,
                       help="budget in emulator frames (default 10,000,000); with --resume, a larger "
                            "budget extends the run")
    train.add_argument("--out", required=True, help="run folder (config, checkpoint, metrics, tb/)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint; only --frames, --torch-threads, "
                            "--env-threads, --device, --validate-every, --validation-games and "
                            "--no-progress may change, any other flag must repeat the stored value")
    train.add_argument("--seed", type=int,
                       help="seed of weights, actions, noise and training games, 0-900 (default 0)")
    train.add_argument("--num-envs", type=int, help="parallel games (default 16)")
    train.add_argument("--frame-skip", type=int, help="frames per step (default 4); 1 = the reference")
    train.add_argument("--rollout", type=int,
                       help="agent steps per update and truncated-BPTT window (default: the algorithm's)")
    train.add_argument("--gae-lambda", type=float,
                       help="GAE lambda in [0, 1] (default: the algorithm's; A2C 1.0 = n-step returns, "
                            "PPO 0.95)")
    train.add_argument("--lr", type=float, help="learning rate (default: the algorithm's)")
    train.add_argument("--entropy-coef", type=float,
                       help="weight of the entropy bonus, >= 0 (default 0.01)")
    train.add_argument("--env-threads", type=int,
                       help="emulator threads (default 0: all cores; 1 = reproducible)")
    train.add_argument("--torch-threads", type=int, help="torch threads (default 1)")
    train.add_argument("--device", help="torch device: cpu (default; with --resume, the run's), cuda or "
                                        "cuda:N; the games stay on the CPU")
    train.add_argument("--checkpoint-every", type=int,
                       help="updates between checkpoints (default: the algorithm's)")
    train.add_argument("--validate-every", type=int,
                       help="frames between validations, greedy games on the validation seeds whose best "
                            "agent is kept as best.pt (default 2,000,000; 0 = never)")
    train.add_argument("--validation-games", type=int, help="games per validation (default 10)")
    train.add_argument("--device-params", help="SrTiO3Params JSON for the mstpn core (e.g. from device fit)")
    train.add_argument("--init-from", metavar="AGENT.pt",
                       help="start from this trained agent's learned weights (same core and size; the "
                            "devices are drawn anew for --device-params): fine-tuning on another device")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=_pong_train)

    ev = psub.add_parser("eval", help="play games with a checkpoint (greedy on the test seeds by default)",
                         epilog=PONG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("checkpoint", help="checkpoint file (e.g. checkpoints/pong_mstpn.pt)")
    ev.add_argument("--episodes", type=int, default=10, help="games to play (default 10)")
    ev.add_argument("--seed", type=int, default=0,
                    help="evaluation seed within the split, 0-999 (default 0); with --split raw the env seed")
    ev.add_argument("--split", choices=("test", "validation", "raw"), default="test",
                    help="seed set: test (default; the games reported numbers come from), validation (the "
                         "games checkpoints are chosen on), raw (--seed is the env seed itself)")
    ev.add_argument("--mode", choices=("greedy", "sample", "epsilon", "sticky"), default="greedy",
                    help="greedy (default, the paper's explore=False), sample from the policy, "
                         "epsilon-greedy, or greedy with the emulator's sticky actions")
    ev.add_argument("--epsilon", type=float, default=0.01, help="random-action probability of --mode epsilon")
    ev.add_argument("--sticky", type=float, default=0.25, help="repeat probability of --mode sticky")
    ev.add_argument("--device-params", metavar="P.json",
                    help="play the m-STPN on another memristor (SrTiO3Params JSON, e.g. from device fit): "
                         "learned weights kept, per-synapse devices drawn anew")
    ev.add_argument("--gif", help="write a GIF of the first game beside the synaptic state")
    ev.add_argument("--gif-max-frames", type=int, default=None,
                    help="keep only the first N steps of the game in the GIF (default: all)")
    ev.add_argument("--json", required=True, help="where to write the results")
    ev.add_argument("--device", default="cpu",
                    help="torch device to play on: cpu (default), cuda or cuda:N")
    ev.set_defaults(handler=_pong_eval)

    export = psub.add_parser("export", help="write a run's trained agent (and its learning curve) to a file",
                             epilog=PONG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("run", help="run folder (holds checkpoint.pt, best.pt and metrics.jsonl)")
    export.add_argument("--which", choices=("latest", "best"), default="latest",
                        help="the run's latest checkpoint (default) or its best on the validation games")
    export.add_argument("--out", required=True,
                        help="agent file to write, e.g. checkpoints/pong_mstpn.pt; its learning curve goes "
                             "beside it as <name>_curve.png")
    export.set_defaults(handler=_pong_export)

    tol = psub.add_parser(
        "tolerance", help="device tolerance map: the agent's score as each device property moves",
        description="Sweep one device or driver property at a time (the others as trained), score the "
                    "m-STPN agent with greedy test games over several device draws, and write "
                    "DIR/tolerance.json and DIR/tolerance.png. Each point is a job file in DIR/jobs/: "
                    "a killed map resumes where it stopped.",
        epilog="examples:\n"
               "  mstpn pong tolerance checkpoints/pong_mstpn.pt --out out/tolerance\n"
               "  mstpn pong tolerance checkpoints/pong_mstpn.pt --out out/tol --properties c2c_sigma,tau0 "
               "--draws 1 --games 4\n"
               "  mstpn pong tolerance checkpoints/pong_mstpn.pt --out out/tol --executor ray "
               "--ray-address 10.0.0.5:6379\n"
               "  mstpn pong tolerance checkpoints/pong_mstpn.pt --out out/tol-ft --properties c2c_sigma "
               "--draws 1 --finetune-frames 20000   fine-tuned per point\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    tol.add_argument("checkpoint", help="an m-STPN agent (e.g. checkpoints/pong_mstpn.pt)")
    tol.add_argument("--out", required=True, help="folder for jobs/, tolerance.json and tolerance.png")
    tol.add_argument("--properties", help="comma-separated subset of: c2c_sigma, read_sigma, d2d_sigma, "
                                          "bias_range, bias_levels, max_pulses, write_threshold, g_max, "
                                          "tau0, v_tau (default: all)")
    tol.add_argument("--draws", type=int, default=2, help="device draws per point (default 2)")
    tol.add_argument("--games", type=int, default=10, help="greedy test games per draw (default 10)")
    tol.add_argument("--seed", type=int, default=0, help="test seed of the games (default 0)")
    tol.add_argument("--max-frames", type=int, default=108_000,
                     help="cut games at this many emulator frames (default: whole games)")
    tol.add_argument("--executor", choices=("serial", "local", "ray"), default="local",
                     help="where the points run (default local: a process per core)")
    tol.add_argument("--threads-per-job", type=int, default=1, help="torch threads per point (default 1)")
    tol.add_argument("--ray-address", help="HOST:PORT of a Ray cluster (default RAY_ADDRESS or a local Ray)")
    tol.add_argument("--finetune-frames", type=int, default=0, metavar="N",
                     help="fine-tune the agent N emulator frames on each point's chip before its games "
                          "(its recipe, lr 1e-4 decaying to 0, whole updates of 1,280 frames for the "
                          "shipped agent); costs ~4 ms per frame per point and draw on one core, e.g. "
                          "N = 100,000: ~7 min each (default 0: evaluated as trained)")
    tol.add_argument("--no-progress", action="store_true", help="no progress bar")
    tol.set_defaults(handler=_pong_tolerance)

    curve = psub.add_parser("curve", help="plot learning curves of runs (score vs frames and hours)")
    curve.add_argument("runs", nargs="+", help="run folders, each as LABEL=FOLDER or FOLDER")
    curve.add_argument("--out", required=True, help="PNG to write")
    curve.set_defaults(handler=_pong_curve)


def _new_run_config(args: argparse.Namespace) -> tuple[ModuleType, TrainerConfig]:
    """The configuration of a new run: the flags given, the configuration classes' defaults for the rest."""
    import importlib

    from mstpn.devices.params import load_params
    from mstpn.nn.mstpn import MSTPNConfig
    from mstpn.rl.agent import AgentConfig
    from mstpn.tasks.pong import step_duration_s

    algo = args.algo or "a2c"
    module = importlib.import_module(f"mstpn.rl.{algo}")
    config_cls = module.A2CConfig if algo == "a2c" else module.PPOConfig
    core = args.core or AgentConfig.core
    frame_skip = config_cls.frame_skip if args.frame_skip is None else args.frame_skip
    device = load_params(args.device_params).to_dict() if args.device_params else {}
    # The synapses decay in real time: one agent step lasts frame_skip frames of the 60 Hz game.
    dt_step = step_duration_s(frame_skip)
    mstpn = {"dt_step": dt_step} if core == "mstpn" and dt_step != MSTPNConfig.dt_step else {}
    overrides = {"agent": AgentConfig(core=core, device_params=device, mstpn=mstpn)}
    for name in ("frames", "seed", "num_envs", "frame_skip", "rollout", "gae_lambda", "lr", "entropy_coef",
                 "env_threads", "torch_threads", "device", "checkpoint_every", "validate_every",
                 "validation_games", "init_from"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return module, config_cls(**overrides)


def _pong_train(args: argparse.Namespace) -> int:
    from mstpn.rl.common import resolve_device
    from mstpn.rl.resume import given_flags, resumed_config

    if args.device is not None:
        resolve_device(args.device)  # refused before anything is read or written
    if args.resume:
        module, config = resumed_config(args.out, given_flags(args))
    else:
        module, config = _new_run_config(args)
    summary = module.train(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"done: {summary['frames']:,} frames, recent mean score {summary['score_mean20']}")
    return 0


def _pong_tolerance(args: argparse.Namespace) -> int:
    from mstpn.rl.tolerance import tolerance_map

    properties = [p.strip() for p in args.properties.split(",") if p.strip()] if args.properties else None
    summary = tolerance_map(args.checkpoint, args.out, properties=properties, draws=args.draws,
                            games=args.games, seed=args.seed, max_frames=args.max_frames,
                            executor=args.executor, threads_per_job=args.threads_per_job,
                            ray_address=args.ray_address, progress=not args.no_progress,
                            finetune_frames=args.finetune_frames)
    for name, entry in summary["properties"].items():
        points = ", ".join(f"{p['value']:g}: {p['mean_score']:+.1f}" for p in entry["points"])
        print(f"{name} (agent's {entry['preset']:g}): {points}")
    print(f"wrote {args.out}/tolerance.json and {args.out}/tolerance.png")
    return 0


def _pong_curve(args: argparse.Namespace) -> int:
    from mstpn.report.curves import plot_learning_curves

    runs = dict(item.split("=", 1) if "=" in item else (item, item) for item in args.runs)
    plot_learning_curves(runs, args.out)
    print(f"wrote {args.out}")
    return 0


def _pong_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mstpn.report.curves import plot_learning_curves
    from mstpn.report.reproduce_pong import curve_path
    from mstpn.rl.export import export_agent
    from mstpn.tasks.art_report import MODEL_NAMES

    out = Path(args.out)
    info = export_agent(args.run, out, args.which)
    curve = curve_path(out)
    label = MODEL_NAMES[info["agent_config"]["core"]]
    plot_learning_curves({label: args.run}, curve)
    score = info["provenance"]["score_mean20"]
    recent = "no finished games" if score is None else f"training score {score:+.2f}"
    print(f"wrote {out} ({info['frames']:,} frames, {recent}) and {curve}")
    return 0


def _pong_eval(args: argparse.Namespace) -> int:
    from mstpn.rl.evaluate import PlayMode, evaluate, write_eval_json

    mode = PlayMode(args.mode, epsilon=args.epsilon, sticky=args.sticky)
    params = None
    if args.device_params:
        from mstpn.devices.params import load_params

        params = load_params(args.device_params)
    result = evaluate(args.checkpoint, args.episodes, args.seed, args.gif,
                      gif_max_frames=args.gif_max_frames, device=args.device, split=args.split, mode=mode,
                      device_params=params)
    write_eval_json(result, args.json)
    print(f"{args.mode}, {args.split} seed {args.seed}: mean score {result['mean_score']:+.2f} over "
          f"{args.episodes} games, {result['lost']} lost: {result['scores']}")
    return 0


# ---------------------------------------------------------------------------------------- energy
ENERGY_EPILOG = """examples:
  mstpn energy --paper --json out/energy_paper.json     the paper's table, ours beside it, fp32 validation
  mstpn energy checkpoints/pong_mstpn.pt --episodes 5 --json energy.json --plot energy.png
  mstpn energy sweep --out out/energy_sweep             energy vs write threshold, bias range, conductance
  mstpn energy --measure-gpu --json gpu.json            NVML-measured GPU baseline (skipped without a GPU)
"""


def _add_energy(sub: argparse._SubParsersAction) -> None:
    energy = sub.add_parser(
        "energy", help="memristive synapses against a GPU: the paper's table, an agent's games, sweeps",
        description="Energy of the m-STPN's synaptic operations (reads, bias hold, dF write pulses; "
                    "'synaptic' and 'system' boundaries) against the same operations on GPUs (analytical "
                    "model calibrated on the paper's A100 fp16 figures; NVML measurement on a CUDA GPU).",
        epilog=ENERGY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    energy.add_argument("target", nargs="?", metavar="CHECKPOINT",
                        help="m-STPN agent checkpoint to play greedy games with, or the word 'sweep'")
    energy.add_argument("--paper", action="store_true", help="reproduce PAPER.md's energy table")
    energy.add_argument("--episodes", type=int, default=5, help="games to play (default 5)")
    energy.add_argument("--seed", type=int, default=0, help="seed of the games (default 0)")
    energy.add_argument("--device-params", metavar="P.json",
                        help="SrTiO3Params JSON (e.g. from `mstpn device fit`) for the synapses")
    energy.add_argument("--json", metavar="OUT", help="write the numbers as JSON (atomically)")
    energy.add_argument("--plot", metavar="OUT.png", help="CHECKPOINT: write the stacked-bar figure")
    energy.add_argument("--out", metavar="DIR", help="sweep: folder for sweep.csv, sweep.md, sweep.png")
    energy.add_argument("--steps", type=int, default=20, help="sweep: measured steps per point (20)")
    energy.add_argument("--measure-gpu", action="store_true",
                        help="measure the GPU with NVML energy counters (needs CUDA and nvidia-ml-py)")
    energy.add_argument("--gpu-runs", type=int, default=100, help="--measure-gpu: runs per op (100)")
    energy.add_argument("--gpu-run-seconds", type=float, default=1.0,
                        help="--measure-gpu: seconds per run, above NVML's ~0.1 s refresh (1.0)")
    energy.set_defaults(handler=_energy)


def _energy(args: argparse.Namespace) -> int:
    from mstpn.report import energy_commands as cmd

    params = _device_params(args.device_params) if args.device_params else None
    modes = [m for m, on in (("--paper", args.paper), ("--measure-gpu", args.measure_gpu),
                             ("CHECKPOINT/sweep", args.target is not None)) if on]
    if len(modes) != 1:
        raise UserError("energy: give exactly one of --paper, --measure-gpu, CHECKPOINT or 'sweep'"
                        + (f" (got {', '.join(modes)})" if modes else ""))
    if args.paper:
        print(cmd.paper_command(args.json, params))
    elif args.measure_gpu:
        text, code = cmd.measure_command(args.json, args.gpu_runs, args.gpu_run_seconds)
        print(text)
        return code
    elif args.target == "sweep":
        if not args.out:
            raise UserError("energy sweep: --out DIR is required")
        if args.steps < 1:
            raise UserError(f"--steps: must be >= 1, got {args.steps}")
        print(cmd.sweep_command(args.out, args.steps, params))
    else:
        print(cmd.checkpoint_command(args.target, args.episodes, args.seed, params, args.json, args.plot))
    return 0


# ---------------------------------------------------------------------------------------- reproduce
REPRODUCE_EPILOG = """examples:
  mstpn reproduce                                  the whole story in ~10 minutes: out/reproduce/report.html
  mstpn reproduce --out out/ci --quick             seconds per part (what CI runs)
  mstpn reproduce --full                           the README's ART seeds and epochs (hours), 10 Pong games
  mstpn reproduce --only pong energy --checkpoint runs/pong_mstpn/checkpoint.pt

Exit code 0 when every part passed, 1 when any failed (the report says which and why).
"""


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    from mstpn.report.reproduce import DEFAULT_CHECKPOINT, DEFAULT_OUT, PART_KEYS

    rep = sub.add_parser(
        "reproduce", help="run the paper's story and write a report (markdown + self-contained HTML)",
        description="Run, under one progress display: the device's six synaptic functions, a fit of a "
                    "simulated characterisation trace, a short associative-retrieval comparison (STPN, "
                    "m-STPN, LSTM, RNN), greedy Pong games of the trained agent with a GIF, and the "
                    "energy per game (paper's assumptions and this agent). Writes DIR/report.md and "
                    "DIR/report.html: every result beside the paper's number, the command that reruns "
                    "it, and the machine. A part that fails is marked FAILED and the others still run.",
        epilog=REPRODUCE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                     help=f"report folder (default {DEFAULT_OUT})")
    size = rep.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_const", dest="budget", const="full",
                      help="the README's ART budget (seeds 0-2, up to 20/50 epochs on 100k sequences; "
                           "finished results in results/art are reused) and 10 Pong games")
    size.add_argument("--quick", action="store_const", dest="budget", const="quick",
                      help="tiny budgets everywhere, seconds per part (CI)")
    rep.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), metavar="CKPT",
                     help=f"Pong agent to evaluate (default {DEFAULT_CHECKPOINT})")
    rep.add_argument("--only", nargs="+", choices=PART_KEYS, metavar="PART",
                     help=f"run only these parts: {', '.join(PART_KEYS)}")
    rep.add_argument("--seed", type=int, default=0, help="seed of every part (default 0)")
    rep.add_argument("--art-results", default="results/art", metavar="DIR",
                     help="--full: finished `mstpn art` JSONs to reuse (default results/art)")
    rep.add_argument("--no-progress", action="store_true", help="no progress display")
    rep.set_defaults(handler=_reproduce, budget="default")


def _reproduce(args: argparse.Namespace) -> int:
    from mstpn.report.reproduce import run_reproduce

    code, _ = run_reproduce(args.out, args.budget, args.checkpoint, only=args.only, seed=args.seed,
                            art_results=args.art_results, progress=not args.no_progress)
    return code


# ---------------------------------------------------------------------------------------- main
REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [_add_device, _add_art, _add_pong,
                                                                   _add_energy, _add_reproduce]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mstpn", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Memristive short-term plasticity neuron networks: devices, cells, Pong, energy.",
        epilog=EPILOG)
    from mstpn import __version__

    parser.add_argument("--version", action="version", version=f"mstpn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"mstpn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mstpn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
