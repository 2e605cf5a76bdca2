"""`mstpn reproduce`: the paper's story in one command, as a report a reader can check.

Five parts run one after the other under one progress display: the device's six synaptic functions,
a fit of a simulated characterisation trace, a short associative-retrieval comparison, greedy Pong
games of the trained agent, and the energy per game (paper's assumptions and our agent). Each part
writes its files into its own subfolder of the report folder and fills one :class:`Section` of the
report; a part that raises is marked FAILED with its error, and the others still run. The report
(``report.md`` and a self-contained ``report.html``) is rewritten after every part, so a long run
can be watched and an interrupted one keeps what it did.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from mstpn.atomic import atomic_write_text
from mstpn.errors import UserError
from mstpn.report.document import Document, Section, render_html, render_markdown
from mstpn.report.machine import load_average, machine_facts
from mstpn.report.reproduce_art import art_part
from mstpn.report.reproduce_context import BUDGETS, Context, sh
from mstpn.report.reproduce_device import device_part, fit_part
from mstpn.report.reproduce_energy import energy_part
from mstpn.report.reproduce_pong import pong_part

DEFAULT_CHECKPOINT = Path("checkpoints/pong_mstpn.pt")
"""The trained m-STPN agent committed with the project."""
DEFAULT_OUT = Path("out/reproduce")
"""Where the report goes unless ``--out`` says otherwise."""
PARTS: tuple[tuple[str, str, str, Callable[[Context, Section], None]], ...] = (
    ("device", "1 · The six synaptic functions of one memristor",
     "One simulated SrTiO3 device (the default preset, with its device-to-device draw and noise) run "
     "through one measurement protocol per synaptic function.", device_part),
    ("fit", "2 · Fitting the model to a measurement trace",
     "A `characterise` trace of a simulated device, written as a source-measure-unit CSV, fitted back "
     "with `mstpn device fit`: does the fit recover the device it came from?", fit_part),
    ("art", "3 · Associative retrieval: STPN, m-STPN, LSTM, RNN",
     "The STPN paper's small supervised benchmark (\"a1b2c3??b\" → 2) with ~2k-parameter models: "
     "short-term plasticity against recurrent memory.", art_part),
    ("pong", "4 · Pong: the trained m-STPN agent",
     "Greedy games of the trained agent, whose STPN layer runs on simulated SrTiO3 synapses with "
     "their noise, quantised sparse writes and bias-set forgetting.", pong_part),
    ("energy", "5 · Energy: memristive synapses against a GPU",
     "Energy of the synaptic operations of one Pong game (transmission, short-term update, decay), "
     "memristive against the same operations on a GPU.", energy_part),
)
PART_KEYS = tuple(key for key, *_ in PARTS)
MAX_TRACEBACK_LINES = 30


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."


def _short_traceback(exc: BaseException) -> str:
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip().splitlines()
    if len(lines) > MAX_TRACEBACK_LINES:
        lines = ["...", *lines[-MAX_TRACEBACK_LINES:]]
    return "\n".join(lines)


def rerun_command(out: Path, budget: str, checkpoint: Path, only: Sequence[str] | None) -> str:
    """The command line that makes this report again."""
    args: list[object] = ["mstpn", "reproduce", "--out", out]
    if budget != "default":
        args.append(f"--{budget}")
    if checkpoint != DEFAULT_CHECKPOINT:
        args += ["--checkpoint", checkpoint]
    if only:
        args += ["--only", *only]
    return sh(*args)


def write_report(doc: Document, out: Path) -> None:
    """Write ``report.md`` and ``report.html`` into ``out`` (each atomically)."""
    atomic_write_text(out / "report.md", render_markdown(doc, out))
    atomic_write_text(out / "report.html", render_html(doc))


def run_reproduce(out: str | os.PathLike = DEFAULT_OUT, budget: str = "default",
                  checkpoint: str | os.PathLike = DEFAULT_CHECKPOINT, *, only: Sequence[str] | None = None,
                  seed: int = 0, art_results: str | os.PathLike = "results/art", progress: bool = True,
                  print_fn: Callable[[str], None] | None = None) -> tuple[int, Document]:
    """Run the parts (all, or those in ``only``), write the report; returns (exit code, document).

    Exit code 0 when every part passed, 1 when any failed.
    """
    from tqdm import tqdm

    if budget not in BUDGETS:
        raise UserError(f"budget: must be one of {', '.join(BUDGETS)}, got {budget!r}")
    unknown = sorted(set(only or ()) - set(PART_KEYS))
    if unknown:
        raise UserError(f"--only: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PART_KEYS)}")
    out, checkpoint = Path(out), Path(checkpoint)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    selected = [p for p in PARTS if not only or p[0] in only]
    ctx = Context(out=out, budget=BUDGETS[budget], checkpoint=checkpoint, art_results=Path(art_results),
                  seed=seed)
    facts = machine_facts()
    doc = Document(
        title="mstpn reproduce: one memristor, six synaptic functions, a Pong-playing network",
        subtitle="Weilenmann et al., Nature Communications 15 (2024), doi 10.1038/s41467-024-51093-3, "
                 "reproduced in simulation; every result beside the paper's number where PAPER.md has "
                 f"one. Budget: **{budget}**.",
        facts=facts, rerun_all=rerun_command(out, budget, checkpoint, only),
        sections=[Section(key, title, intro) for key, title, intro, _ in selected])
    write_report(doc, out)
    say = print_fn or tqdm.write
    start = time.perf_counter()
    bar = tqdm(total=len(selected), unit="part", disable=not progress, dynamic_ncols=True,
               bar_format="{desc} |{bar:12}| {n_fmt}/{total_fmt} parts [{elapsed}{postfix}]")
    ctx.status = lambda text: bar.set_postfix_str(text)
    try:
        for section, (_, title, _, part) in zip(doc.sections, selected, strict=True):
            bar.set_description_str(title.split("·", 1)[-1].strip()[:40])
            bar.set_postfix_str("")
            t0 = time.perf_counter()
            try:
                part(ctx, section)
                section.status = "passed"
            except Exception as exc:  # one part's failure must not hide the others
                section.status, section.error = "failed", _one_line(exc)
                section.traceback = _short_traceback(exc)
            except KeyboardInterrupt:
                section.status, section.error = "failed", "interrupted (Ctrl-C)"
                section.seconds = time.perf_counter() - t0
                write_report(doc, out)
                raise
            section.seconds = time.perf_counter() - t0
            mark = "ok    " if section.status == "passed" else "FAILED"
            say(f"{mark} {title} ({section.seconds:.1f} s): {section.summary or section.error}")
            bar.update(1)
            write_report(doc, out)
    finally:
        bar.close()
    total = time.perf_counter() - start
    facts += [("wall time of this report", f"{total:.0f} s ({total / 60:.1f} min)"),
              ("load average (1/5/15 min) at the end", load_average())]
    write_report(doc, out)
    failed = [s.key for s in doc.sections if s.status == "failed"]
    say(f"wrote {out / 'report.md'} and {out / 'report.html'}: {len(doc.sections) - len(failed)} of "
        f"{len(doc.sections)} parts passed in {total:.0f} s"
        + (f" (FAILED: {', '.join(failed)})" if failed else ""))
    return (1 if failed else 0), doc
