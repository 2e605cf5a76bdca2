"""`mstpn reproduce`: the quick variant end to end, the report's structure, and failures kept apart."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest

from mstpn.cli import main
from mstpn.report import reproduce
from mstpn.report.document import Document, Section, render_html, render_markdown
from mstpn.rl import a2c
from mstpn.rl.agent import AgentConfig

PART_KEYS = ("device", "fit", "art", "pong", "energy")
PNG, GIF = b"\x89PNG\r\n\x1a\n", b"GIF89a"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A one-update m-STPN agent (H = 8, eager), with a learning-curve figure beside it."""
    root = tmp_path_factory.mktemp("agent")
    config = a2c.A2CConfig(frames=1 * 8 * 4, num_envs=1, rollout=8, env_threads=1, torch_threads=1,
                           log_every=1, agent=AgentConfig(core="mstpn", hidden_size=8,
                                                          mstpn={"compile": "never"}))
    a2c.train(config, root / "run", progress=False)
    checkpoint = root / "tiny.pt"
    shutil.copy(root / "run" / "checkpoint.pt", checkpoint)
    from PIL import Image

    Image.new("RGB", (40, 20), "white").save(root / "tiny_curve.png")  # stands in for the real curve
    return checkpoint


def _sections(html: str) -> dict[str, str]:
    """HTML of each part's <section>, by its id."""
    return dict(re.findall(r'<section id="(\w+)">(.*?)</section>', html, flags=re.S))


def _data_uris(html: str) -> list[tuple[str, bytes]]:
    return [(mime, base64.b64decode(data))
            for mime, data in re.findall(r'src="data:(image/\w+);base64,([A-Za-z0-9+/=]+)"', html)]


def test_quick_reproduce_end_to_end(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "report"
    code = main(["reproduce", "--out", str(out), "--quick", "--checkpoint", str(tiny_checkpoint),
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "5 of 5 parts passed" in printed
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()

    # every part present and passed, each with its rerun commands
    sections = _sections(html)
    assert tuple(sections) == PART_KEYS
    for key, body in sections.items():
        assert 'class="badge passed"' in body, key
        assert "Rerun this part" in body, key
        assert "<table>" in body, f"{key}: no table"
        assert "<img " in body, f"{key}: no figure"
    assert "FAILED" not in html
    for command in ("mstpn device demo --out", "mstpn device simulate --protocol characterise",
                    "mstpn device fit", "mstpn art --model stpn", "mstpn art --model lstm",
                    "mstpn art-table", "mstpn pong eval", "mstpn energy --paper", "mstpn reproduce --out"):
        assert command in html, command

    # self-contained: every image is an embedded, decodable PNG or GIF; nothing is fetched
    images = _data_uris(html)
    # device, fit, ART, the Pong GIF and learning curve, the two energy figures
    assert len(images) == len(re.findall(r"<img ", html)) == 7
    assert all(data.startswith(PNG) for mime, data in images if mime == "image/png")
    assert [mime for mime, _ in images].count("image/gif") == 1
    assert next(data for mime, data in images if mime == "image/gif").startswith(GIF)
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "<script" not in html and "<link" not in html and "@import" not in html

    # the paper's numbers beside ours, the machine, the learning curve beside the checkpoint
    energy = sections["energy"]
    for number in ("35.6", "3,463.9", "34,780.5", "≥ 96x"):
        assert number in energy, number
    assert "169,984" in sections["pong"] and "learning curve" in sections["pong"].lower()
    for fact in ("CPU", "cores", "torch", "git commit", "date"):
        assert f"<th>{fact}</th>" in html, fact

    # markdown: same parts, tables, figures as files that exist beside it
    for key in PART_KEYS:
        assert f'<a id="{key}"></a>' in md
    assert md.count("— PASSED") == 5
    assert "| quantity | paper (PAPER.md) | ours | difference | note |" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 7 and all((out / link).is_file() for link in links)
    assert (out / "pong" / "eval.json").is_file() and (out / "energy" / "agent.json").is_file()


def test_missing_checkpoint_fails_its_parts_and_keeps_the_others(tmp_path, capsys):
    out = tmp_path / "report"
    missing = tmp_path / "nowhere" / "pong_mstpn.pt"
    code = main(["reproduce", "--out", str(out), "--quick", "--checkpoint", str(missing), "--no-progress",
                 "--only", "device", "pong", "energy"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "1 of 3 parts passed" in printed and "FAILED: pong, energy" in printed
    html = (out / "report.html").read_text()
    sections = _sections(html)
    assert tuple(sections) == ("device", "pong", "energy")
    assert 'class="badge passed"' in sections["device"] and "<img " in sections["device"]
    for key in ("pong", "energy"):
        body = sections[key]
        assert 'class="badge failed"' in body
        assert "no such checkpoint" in body and "mstpn pong train" in body, key
        assert "<details><summary>traceback</summary>" in body
        assert "Rerun this part" in body
    # the energy part fails on the agent but still shows the paper's table it computed first
    assert "3,463.9" in sections["energy"] and "data:image/png;base64," in sections["energy"]
    md = (out / "report.md").read_text()
    assert "## 4 · Pong: the trained m-STPN agent — FAILED" in md
    assert "**FAILED:**" in md and "no such checkpoint" in md


def test_an_unexpected_error_is_reported_with_its_traceback(tmp_path, monkeypatch):
    def broken(ctx, sec):
        sec.text("half-way result")
        raise ZeroDivisionError("boom <b>")

    def fine(ctx, sec):
        sec.table(["a", "b"], [["1", "2"]])
        sec.summary = "fine"

    monkeypatch.setattr(reproduce, "PARTS", (("one", "One", "", broken), ("two", "Two", "", fine)))
    monkeypatch.setattr(reproduce, "PART_KEYS", ("one", "two"))
    lines: list[str] = []
    code, doc = reproduce.run_reproduce(tmp_path, "quick", progress=False, print_fn=lines.append)
    assert code == 1
    one, two = doc.sections
    assert (one.status, two.status) == ("failed", "passed")
    assert one.error == "ZeroDivisionError: boom <b>"
    assert "ZeroDivisionError" in one.traceback and "broken" in one.traceback
    html = (tmp_path / "report.html").read_text()
    assert "boom &lt;b&gt;" in html and "boom <b>" not in html
    assert "half-way result" in html
    assert any(line.startswith("FAILED One") for line in lines)


def test_bad_arguments_exit_2(tmp_path):
    for args in (["--quick", "--full"], ["--only", "bogus"]):
        with pytest.raises(SystemExit) as info:
            main(["reproduce", "--out", str(tmp_path), *args])
        assert info.value.code == 2


def test_markdown_and_html_rendering(tmp_path):
    figure = tmp_path / "f.png"
    figure.write_bytes(PNG + b"rest")
    sec = Section("part", "A part", status="passed", summary="ok | fine")
    sec.table(["x", "y"], [["a|b", "1.5 %"]], caption="cap")
    sec.figure(figure, "a figure")
    sec.figure(tmp_path / "missing.png", "gone")
    sec.command("mstpn thing --flag")
    doc = Document("Title", facts=[("CPU", "test <cpu>")], sections=[sec])
    md = render_markdown(doc, tmp_path)
    assert "| a\\|b | 1.5 % |" in md and "![a figure](f.png)" in md and "figure missing: missing.png" in md
    html = render_html(doc)
    assert "test &lt;cpu&gt;" in html
    assert '<td class="num">1.5 %</td>' in html
    assert f'src="data:image/png;base64,{base64.b64encode(PNG + b"rest").decode()}"' in html
    assert "mstpn thing --flag" in html


def _fake_art_record(model: str, seed: int, budget, acc: float, epochs_run: int | None = None) -> dict:
    epochs, patience = budget.art_epochs[model]
    run = epochs if epochs_run is None else epochs_run
    return {"task": "associative_retrieval", "model": model, "hidden_size": 11, "parameters": 1715,
            "config": {"model": model, "epochs": epochs, "patience": patience, "seed": seed,
                       "train_size": budget.art_train, "val_size": budget.art_val,
                       "test_size": budget.art_test},
            "history": [{"epoch": e, "test_acc": acc * e / run} for e in range(1, run + 1)],
            "final_test_acc": acc, "epochs_run": run, "stopped_early": False}


def test_full_budget_reuses_finished_art_results(tmp_path):
    import json
    from dataclasses import replace

    from mstpn.report.reproduce_art import _reusable, art_part
    from mstpn.report.reproduce_context import BUDGETS, Context

    budget = replace(BUDGETS["full"], art_seeds=(0,))
    results = tmp_path / "results"
    results.mkdir()
    accs = {"stpn": 0.99, "mstpn": 0.97, "lstm": 0.6, "rnn": 0.3}
    for model, acc in accs.items():
        (results / f"{model}_seed0.json").write_text(json.dumps(_fake_art_record(model, 0, budget, acc)))
    ctx = Context(out=tmp_path / "out", budget=budget, checkpoint=tmp_path / "none.pt", art_results=results)
    sec = Section("art", "ART")
    art_part(ctx, sec)  # trains nothing: every run of the plan is there and finished
    assert not any((tmp_path / "out" / "art").glob("*.json"))
    table = sec.blocks[1]
    assert [row[4] for row in table.rows] == ["99.00", "97.00", "60.00", "30.00"]
    assert [row[-1] for row in table.rows] == [f"reused {results / f'{m}_seed0.json'}" for m in accs]
    assert [row[-1] for row in sec.blocks[2].rows] == ["yes", "yes", "yes"]
    assert any("# stpn seed 0: reused" in c for c in sec.commands)

    # an unfinished run, or one of another plan, is not reused
    unfinished = results / "unfinished.json"
    unfinished.write_text(json.dumps(_fake_art_record("stpn", 0, budget, 0.5, epochs_run=3)))
    assert _reusable(unfinished, 20, 5, budget) is None
    assert _reusable(results / "stpn_seed0.json", 20, 5, budget) is not None
    assert _reusable(results / "stpn_seed0.json", 8, 0, budget) is None
    assert _reusable(results / "missing.json", 20, 5, budget) is None
