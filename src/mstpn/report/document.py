"""A small report document: sections of text, tables, figures and commands, rendered twice.

:class:`Section` collects the blocks of one part of a report as the part runs, so a part that fails
half-way keeps what it had produced. :func:`render_markdown` links figures as files beside the
report; :func:`render_html` embeds them as base64 data URIs, with inline CSS and nothing external, so
the HTML file is the whole report.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
        ".svg": "image/svg+xml"}
"""Media types of the figure files a report can embed."""
STATUS_LABEL = {"passed": "PASSED", "failed": "FAILED", "pending": "NOT RUN", "skipped": "SKIPPED"}
"""How each part status is printed."""


@dataclass
class Text:
    """A paragraph; `backticks` mark code."""

    text: str


@dataclass
class Table:
    """A table of strings; the first row of ``rows`` follows ``header``."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    """A figure file inside the report folder, with a caption."""

    path: Path
    """Absolute (or working-directory relative) path of the file."""
    caption: str
    width_px: int | None = None
    """Display width in the HTML; None = as wide as the page allows."""


Block = Text | Table | Figure


@dataclass
class Section:
    """One part of the report: its results so far, how to rerun it, and whether it worked."""

    key: str
    """Short name (``device``, ``fit`` ...), also the HTML anchor."""
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    """Shell commands that rerun this part on its own."""
    status: str = "pending"
    """pending, passed, failed or skipped."""
    summary: str = ""
    """One line for the overview table."""
    error: str | None = None
    """One-line error message of a failed part."""
    traceback: str | None = None
    seconds: float | None = None

    def text(self, text: str) -> None:
        """Append a paragraph."""
        self.blocks.append(Text(text))

    def table(self, header: list[str], rows: list[list[str]], caption: str = "") -> None:
        """Append a table."""
        self.blocks.append(Table(list(header), [list(map(str, r)) for r in rows], caption))

    def figure(self, path: str | Path, caption: str, width_px: int | None = None) -> None:
        """Append a figure (the file must exist when the report is rendered)."""
        self.blocks.append(Figure(Path(path), caption, width_px))

    def command(self, *commands: str) -> None:
        """Record commands that rerun this part."""
        self.commands.extend(commands)


@dataclass
class Document:
    """The whole report: a title, a preamble of key/value facts, an overview, the sections."""

    title: str
    subtitle: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    """Machine and run facts (CPU, torch, commit ...), shown as a two-column table."""
    rerun_all: str = ""
    """The command that reruns the whole report."""
    sections: list[Section] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ markdown
def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _md_block(block: Block, base: Path) -> list[str]:
    if isinstance(block, Text):
        return [block.text, ""]
    if isinstance(block, Table):
        caption = [f"*{block.caption}*", ""] if block.caption else []
        return [*_md_table(block.header, block.rows), "", *caption]
    if not block.path.is_file():
        return [f"*(figure missing: {block.path.name})* {block.caption}", ""]
    return [f"![{block.caption}]({_relative(block.path, base)})", "", f"*{block.caption}*", ""]


def render_markdown(doc: Document, base: str | Path) -> str:
    """The report as GitHub-flavoured markdown; figures are links relative to ``base``."""
    base = Path(base)
    lines = [f"# {doc.title}", ""]
    if doc.subtitle:
        lines += [doc.subtitle, ""]
    lines += ["## Overview", ""]
    lines += _md_table(["part", "status", "result", "time"],
                       [[f"[{s.title}](#{s.key})", STATUS_LABEL[s.status], s.summary or s.error or "",
                         _seconds(s.seconds)] for s in doc.sections])
    lines.append("")
    if doc.rerun_all:
        lines += ["Rerun everything:", "", "```bash", doc.rerun_all, "```", ""]
    lines += ["## Machine", "", *_md_table(["", ""], [[k, v] for k, v in doc.facts]), ""]
    for s in doc.sections:
        lines += [f'<a id="{s.key}"></a>', "", f"## {s.title} — {STATUS_LABEL[s.status]}", ""]
        if s.seconds is not None:
            lines += [f"*{_seconds(s.seconds)}*", ""]
        if s.status == "failed":
            lines += [f"**FAILED:** {s.error}", ""]
            if s.traceback:
                lines += ["<details><summary>traceback</summary>", "", "```text", s.traceback.rstrip(),
                          "```", "", "</details>", ""]
        if s.intro:
            lines += [s.intro, ""]
        for block in s.blocks:
            lines += _md_block(block, base)
        if s.commands:
            lines += ["Rerun this part:", "", "```bash", *s.commands, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ------------------------------------------------------------------------------------------ html
CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d2228; background: #f6f7f9; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: #fff;
       box-shadow: 0 0 0 1px #e3e6ea; min-height: 100vh; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-top: 16px; border-top: 1px solid #e3e6ea;
     display: flex; align-items: center; gap: 12px; }
.subtitle { color: #59636e; margin: 0 0 20px; }
table { border-collapse: collapse; margin: 10px 0 6px; font-size: 14px; width: auto; max-width: 100%; }
th, td { border: 1px solid #d9dde2; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.caption { color: #59636e; font-size: 13px; margin: 2px 0 14px; }
figure { margin: 16px 0 20px; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; border-radius: 4px; }
figcaption { color: #59636e; font-size: 13px; margin-top: 6px; }
pre { background: #f1f3f5; border: 1px solid #e3e6ea; border-radius: 4px; padding: 10px 12px;
      overflow-x: auto; font-size: 13px; line-height: 1.45; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
p code, td code, li code { background: #f1f3f5; padding: 1px 4px; border-radius: 3px; }
.badge { font-size: 12px; font-weight: 700; letter-spacing: 0.04em; padding: 2px 8px;
         border-radius: 10px; color: #fff; }
.passed { background: #2e7d4f; } .failed { background: #c0392b; }
.pending, .skipped { background: #8a939c; }
.time { color: #8a939c; font-size: 13px; font-weight: 400; margin-left: auto; }
.error { background: #fdecea; border: 1px solid #f5c2bd; border-radius: 4px; padding: 10px 12px;
         margin: 10px 0; }
.error strong { color: #c0392b; }
details { margin-top: 6px; } summary { cursor: pointer; color: #59636e; }
.rerun { margin-top: 14px; } .rerun h3 { font-size: 14px; margin: 0 0 4px; color: #59636e; }
a { color: #1f5fa8; text-decoration: none; } a:hover { text-decoration: underline; }
"""

_NUMERIC = re.compile(r"^[\s+\-−~≈≥≤<>]*[\d.,]+(e[+-]?\d+)?\s*(%|x|×|s|mJ|nS|nW|V)?[\s*]*$")


def _inline(text: str) -> str:
    """Escape, then render `code` spans and **bold**."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _html_table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    head = "".join(f"<th>{_inline(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{_inline(c)}</td>' if _NUMERIC.match(c)
                        else f"<td>{_inline(c)}</td>" for c in row)
        body.append(f"<tr>{cells}</tr>")
    cap = f'<div class="caption">{_inline(caption)}</div>' if caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{cap}"


def data_uri(path: Path) -> str:
    """The file as a ``data:`` URI (base64)."""
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block.header, block.rows, block.caption)
    if not block.path.is_file():
        return (f'<p class="caption">(figure missing: {html.escape(block.path.name)}) '
                f"{_inline(block.caption)}</p>")
    width = f' width="{block.width_px}"' if block.width_px else ""
    return (f'<figure><img src="{data_uri(block.path)}" alt="{html.escape(block.caption)}"{width}>'
            f"<figcaption>{_inline(block.caption)}</figcaption></figure>")


def _html_section(s: Section) -> str:
    parts = [f'<section id="{s.key}"><h2>{html.escape(s.title)} <span class="badge {s.status}">'
             f"{STATUS_LABEL[s.status]}</span><span class=\"time\">{_seconds(s.seconds)}</span></h2>"]
    if s.status == "failed":
        tb = ""
        if s.traceback:
            tb = (f"<details><summary>traceback</summary><pre>{html.escape(s.traceback.rstrip())}</pre>"
                  "</details>")
        parts.append(f'<div class="error"><strong>FAILED:</strong> {_inline(s.error or "")}{tb}</div>')
    if s.intro:
        parts.append(f"<p>{_inline(s.intro)}</p>")
    parts += [_html_block(b) for b in s.blocks]
    if s.commands:
        cmds = html.escape("\n".join(s.commands))
        parts.append(f'<div class="rerun"><h3>Rerun this part</h3><pre><code>{cmds}</code></pre></div>')
    parts.append("</section>")
    return "\n".join(parts)


def render_html(doc: Document) -> str:
    """The report as one self-contained HTML page (inline CSS, figures as data URIs)."""
    rows = "".join(
        f'<tr><td><a href="#{s.key}">{_inline(s.title)}</a></td>'
        f'<td><span class="badge {s.status}">{STATUS_LABEL[s.status]}</span></td>'
        f"<td>{_inline(s.summary or s.error or '')}</td><td class=\"num\">{_seconds(s.seconds)}</td></tr>"
        for s in doc.sections)
    overview = (f"<table><thead><tr><th>part</th><th>status</th><th>result</th><th>time</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")
    facts = "".join(f"<tr><th>{_inline(k)}</th><td>{_inline(v)}</td></tr>" for k, v in doc.facts)
    rerun = (f"<p>Rerun everything:</p><pre><code>{html.escape(doc.rerun_all)}</code></pre>"
             if doc.rerun_all else "")
    body = "\n".join(_html_section(s) for s in doc.sections)
    subtitle = f'<p class="subtitle">{_inline(doc.subtitle)}</p>' if doc.subtitle else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head>\n<body><main>"
            f"<h1>{html.escape(doc.title)}</h1>{subtitle}"
            f'<h2 id="overview">Overview</h2>{overview}{rerun}'
            f'<h2 id="machine">Machine</h2><table><tbody>{facts}</tbody></table>\n'
            f"{body}\n</main></body></html>\n")
