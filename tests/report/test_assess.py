"""`mstpn device assess`: a self-contained report, its sections, the verdict, and bad input refused."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from mstpn.cli import main
from mstpn.devices.params import srtio3_weilenmann2024
from mstpn.devices.protocols import run_protocol
from mstpn.devices.trace import write_trace_csv
from mstpn.report.assess import predict_score

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "pong_mstpn.pt"
TOLERANCE = ROOT / "results" / "pong" / "tolerance" / "tolerance.json"
DEVICE_AXES = {"c2c_sigma", "read_sigma", "d2d_sigma", "g_max", "tau0", "v_tau"}
PNG = b"\x89PNG\r\n\x1a\n"


def _assess(*args: str | Path) -> int:
    return main(["device", "assess", *map(str, args), "--tolerance", str(TOLERANCE),
                 "--checkpoint", str(CHECKPOINT), "--no-progress"])


@pytest.fixture(scope="module")
def trace_csv(tmp_path_factory) -> Path:
    """A measurement-style `characterise` trace of a simulated preset device (1 % instrument noise)."""
    path = tmp_path_factory.mktemp("trace") / "device.csv"
    run = run_protocol("characterise", srtio3_weilenmann2024(), seed=3, current_noise=0.01)
    write_trace_csv(run.trace, path)
    return path


@pytest.fixture(scope="module")
def fitted(trace_csv, tmp_path_factory) -> Path:
    """The report of the fitted trace, no games."""
    out = tmp_path_factory.mktemp("assess") / "report"
    assert _assess(trace_csv, "--out", out, "--games", "0") == 0
    return out


def test_html_is_self_contained(fitted):
    html = (fitted / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html)
    assert "<link" not in html and "<script" not in html and "url(" not in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 3  # six functions, fit, tolerance map (no games: no energy figure)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    names = {"report.html", "report.md", "assess.json", "params.json", "device_functions.json",
             "device_functions.png", "fit.png", "tolerance.png"}
    assert {p.name for p in fitted.iterdir()} == names


def test_every_section_is_there(fitted):
    html = (fitted / "report.html").read_text()
    sections = dict(re.findall(r'<section id="(\w+)">(.*?)</section>', html, flags=re.S))
    assert list(sections) == ["verdict", "device", "fit", "tolerance", "agent", "energy"]
    assert "meta-plasticity" in sections["device"] and "paired-pulse" in sections["device"]
    assert "95 % interval" in sections["fit"] and "Not identified by these traces" in sections["fit"]
    assert "SKIPPED" in sections["agent"] and "--games 0" in sections["agent"]
    for gpu in ("A100", "H100", "H200"):
        assert gpu in sections["energy"]
    md = (fitted / "report.md").read_text()
    for title in ("## Verdict", "## The six synaptic functions", "## Fit and uncertainties",
                  "## Where the device sits", "## The agent's score", "## Energy per game"):
        assert title in md
    assert "](device_functions.png)" in md and "](tolerance.png)" in md


def test_fit_uncertainties_are_reported(fitted):
    summary = json.loads((fitted / "assess.json").read_text())
    params = json.loads((fitted / "params.json").read_text())
    assert summary["kind"] == "fit" and summary["residual_rel_rms"] < 0.05
    lo, hi = summary["intervals_95"]["tau0"]
    assert lo < summary["params"]["tau0"] < hi
    assert summary["not_identified"] == params["_not_identified"]
    assert summary["origin"]["d2d_sigma"].startswith("fixed")


def test_verdict_names_the_lowest_device_property(fitted):
    summary = json.loads((fitted / "assess.json").read_text())
    limiting = summary["limiting_property"]
    assert limiting in DEVICE_AXES
    device_rows = [p for p in summary["positions"] if p["device_property"]]
    assert {p["property"] for p in device_rows} == DEVICE_AXES
    lowest = min(p["predicted"] for p in device_rows)
    assert next(p for p in device_rows if p["property"] == limiting)["predicted"] <= lowest + 0.05
    assert summary["verdict"].startswith("Verdict: limited by") and f"`{limiting}`" in summary["verdict"]
    md = (fitted / "report.md").read_text()
    assert summary["verdict"] in md.splitlines()[2]  # the subtitle, right under the title


def test_verdict_follows_the_map(tmp_path):
    """A map where only the read noise matters, a device far out on it: read noise is named."""
    flat = [{"value": v, "mean_score": 15.0, "std_over_draws": 0.0, "draws": 1} for v in (0.0, 0.05, 0.1)]
    tol = {"checkpoint": "agent.pt", "draws": 1, "games": 2, "test_seed": 0, "target_score": 18.0,
           "properties": {
               "c2c_sigma": {"preset": 0.05, "points": flat},
               "read_sigma": {"preset": 0.0, "points": [
                   {"value": 0.0, "mean_score": 15.0}, {"value": 0.1, "mean_score": 15.0},
                   {"value": 0.2, "mean_score": -5.0}]},
               "tau0": {"preset": 1.0, "points": [{"value": 0.5, "mean_score": 10.0},
                                                  {"value": 2.0, "mean_score": 16.0}]}}}
    (tmp_path / "tol.json").write_text(json.dumps(tol))
    params = srtio3_weilenmann2024().replace(read_sigma=0.15).to_dict()
    (tmp_path / "dev.json").write_text(json.dumps(params))
    out = tmp_path / "out"
    assert main(["device", "assess", str(tmp_path / "dev.json"), "--out", str(out), "--games", "0",
                 "--tolerance", str(tmp_path / "tol.json"), "--no-progress"]) == 0
    summary = json.loads((out / "assess.json").read_text())
    by_name = {p["property"]: p for p in summary["positions"]}
    assert by_name["read_sigma"]["predicted"] == pytest.approx(5.0)
    assert by_name["tau0"]["predicted"] == pytest.approx(13.0)  # halfway in log2 between 0.5 and 2
    assert summary["limiting_property"] == "read_sigma" and "read noise" in summary["verdict"]


def test_predict_score_interpolates_and_clamps():
    points = [{"value": 1.0, "mean_score": 0.0}, {"value": 4.0, "mean_score": 10.0}]
    assert predict_score(points, 2.0, log=True) == (pytest.approx(5.0), True)
    assert predict_score(points, 2.5, log=False) == (pytest.approx(5.0), True)
    assert predict_score(points, 9.0, log=True) == (pytest.approx(10.0), False)


def test_games_on_the_device(fitted, tmp_path):
    out = tmp_path / "played"
    assert _assess(fitted / "params.json", "--out", out, "--games", "1", "--max-frames", "160") == 0
    summary = json.loads((out / "assess.json").read_text())
    assert len(summary["played"]["scores"]) == 1 and summary["played"]["episode_frames"] == [160]
    assert summary["energy_played_mj"]["memristive"]["synaptic"]["total"] > 0
    assert "measured on this device" in summary["verdict"] and "cut at 160 frames" in summary["verdict"]
    html = (out / "report.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 3  # functions, map, energy
    assert summary["origin"]["tau0"].startswith("fitted (by the fit")


@pytest.mark.parametrize("case", ["missing", "mixed", "two_params", "bad_csv", "bad_params", "games",
                                  "tolerance", "out_is_file"])
def test_bad_input_exits_2_and_writes_nothing(case, trace_csv, tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(srtio3_weilenmann2024().to_dict()))
    out = tmp_path / "out"
    args: list[str | Path] = [good]
    extra: list[str | Path] = ["--games", "0"]
    if case == "missing":
        args = [tmp_path / "nope.csv"]
    elif case == "mixed":
        args = [good, trace_csv]
    elif case == "two_params":
        args = [good, good]
    elif case == "bad_csv":
        args = [tmp_path / "bad.csv"]
        args[0].write_text("time_s,volts,current_a\n0,0.1,1e-9\n")
    elif case == "bad_params":
        args = [tmp_path / "bad.json"]
        args[0].write_text(json.dumps({"tau0": -1.0}))
    elif case == "games":
        extra = ["--games", "-1"]
    elif case == "tolerance":
        extra += ["--tolerance", tmp_path / "none.json"]
    elif case == "out_is_file":
        out.write_text("a file")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["device", "assess", *map(str, args), "--out", str(out), "--no-progress",
                 "--tolerance", str(TOLERANCE), *map(str, extra)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("mstpn: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case != "out_is_file":
        assert not out.exists()


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["device", "assess", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "mstpn device assess params.json --out" in text and "--games" in text
