"""`mstpn device demo` and `mstpn device simulate`: outputs, figures of merit, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mstpn.cli import main
from mstpn.devices.trace import Pulse, read_trace_csv, segment


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "device"
    code = main(["device", "demo", "--out", str(out), "--seed", "1"])
    return code, out


def test_demo_writes_png_and_json(demo):
    code, out = demo
    assert code == 0
    png = (out / "device_functions.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000
    assert sorted(p.name for p in out.iterdir()) == ["device_functions.json", "device_functions.png"]


def test_demo_figures_of_merit_are_sound(demo):
    result = json.loads((demo[1] / "device_functions.json").read_text())
    for key in ("long_term_memory", "transmission", "long_term_plasticity", "short_term_memory",
                "short_term_facilitation", "meta_plasticity", "energy"):
        assert key in result
    meta = result["meta_plasticity"]
    assert len(meta["levels"]) >= 5 and meta["max_abs_rel_error"] < 0.15
    assert meta["v_tau_fit_V"] == pytest.approx(result["device_params"]["v_tau"], rel=0.1)
    taus = [lv["tau_fit_s"] for lv in meta["levels"]]
    assert np.all(np.diff(taus) > 0) and meta["tau_span_decades"] > 2
    assert result["transmission"]["min_r2"] > 0.999
    ltp = result["long_term_plasticity"]
    assert 0.05 < ltp["ltp"]["nonlinearity"] < 0.6 and ltp["ltp"]["last_over_first_step"] < 0.6
    assert ltp["ltd"]["first_step_S"] < 0 and ltp["ltd"]["last_over_first_step"] < 0.6
    stm = result["short_term_memory"]
    assert stm["tau_fit_s"] == pytest.approx(stm["tau_model_s"], rel=0.15)
    assert abs(stm["dg_remaining_S"]) < 0.1 * stm["dg_volatile_S"]
    ppf = result["short_term_facilitation"]
    assert ppf["ppf_index_percent"][0] > 150 and abs(ppf["ppf_index_percent"][-1] - 100) < 25
    assert abs(result["long_term_memory"]["max_abs_drift_rel"]) < 0.05
    energy = result["energy"]["pulse_J"]
    first = energy[0]
    assert 0 < first["energy_J"] < 1e-9
    assert all(e["energy_J"] > 0 for e in energy)


def test_simulate_writes_a_readable_trace(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["device", "simulate", "--protocol", "ppf", "--seed", "2", "--noise", "0.01",
                 "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    trace = read_trace_csv(out)
    assert sum(isinstance(e, Pulse) for e in segment(trace)) == 20


def test_simulate_accepts_params_and_ideal(tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"tau0": 3.0, "d2d_sigma": 0.0}))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["device", "simulate", "--protocol", "stm", "--params", str(params), "--ideal",
                 "--out", str(a)]) == 0
    assert main(["device", "simulate", "--protocol", "stm", "--ideal", "--out", str(b)]) == 0
    ta, tb = read_trace_csv(a), read_trace_csv(b)
    assert ta.time_s[-1] == pytest.approx(3 * tb.time_s[-1], rel=2e-3)  # holds scale with tau0


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "nope"], "unknown protocol 'nope'"),
    (["--protocol", "stm", "--params", "{bad}"], "not valid JSON"),
    (["--protocol", "stm", "--params", '{"tau0": -1}'], "tau0: must be > 0"),
    (["--protocol", "stm", "--params", '{"tau_zero": 1}'], "unknown field 'tau_zero'"),
    (["--protocol", "stm", "--params", "[1, 2]"], "expected a JSON object"),
    (["--protocol", "stm", "--params", "MISSING"], "cannot read parameter file"),
    (["--protocol", "stm", "--noise", "-0.5"], "--noise"),
    (["--protocol", "stm", "--noise", "nan"], "--noise"),
])
def test_simulate_bad_input_one_line_exit_2_no_output(tmp_path, capsys, args, message):
    out = tmp_path / "trace.csv"
    if "--params" in args:
        i = args.index("--params") + 1
        path = tmp_path / "p.json"
        if args[i] != "MISSING":
            path.write_text(args[i])
        args = [*args[:i], str(path), *args[i + 1:]]
    code = main(["device", "simulate", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mstpn: error:") and message in err
    assert not out.exists() and list(tmp_path.glob("*.csv*")) == [] and list(tmp_path.glob(".*")) == []


def test_demo_bad_params_exit_2(tmp_path, capsys):
    params = tmp_path / "p.json"
    params.write_text('{"g_min": 1e-6}')
    code = main(["device", "demo", "--out", str(tmp_path / "d"), "--params", str(params)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "g_min" in err
    assert not (tmp_path / "d").exists()


def test_simulate_help_lists_protocols_and_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["device", "simulate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "characterise" in text and "metaplasticity" in text and "examples:" in text


def test_mstpn_help_runs_as_a_program():
    exe = Path(sys.executable).with_name("mstpn")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "mstpn.cli"]
    proc = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "device" in proc.stdout and "examples:" in proc.stdout
