"""`mstpn energy`: --paper JSON, the NVML skip, the checkpoint path and its guard, the sweep command."""

from __future__ import annotations

import functools
import json
import sys
import types

import pytest
import torch
from energy_helpers import run_probe

from mstpn.cli import main
from mstpn.energy import gpu_measure
from mstpn.energy.gpu_measure import GPUUnavailable, measure_gpu_energy


def test_paper_json(tmp_path, capsys):
    out = tmp_path / "paper.json"
    assert main(["energy", "--paper", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "A100 fp32 optimal" in text and "predicted" in text and f"wrote {out}" in text
    data = json.loads(out.read_text())
    assert data["memristive_mj"]["decay"] == pytest.approx(35.6, rel=0.02)
    assert data["memristive_mj"]["total"] == pytest.approx(36.0, rel=0.05)
    assert data["memristive_mj"]["writes"] > 0
    for precision in ("fp16", "fp32"):
        for mode in ("optimal", "as_written"):
            assert data["gpu_mj"]["a100"][precision][mode] > 0
    assert data["ratio_vs_a100_fp16_optimal"] > 90
    assert "fp32_optimal_error_pct" in data["validation"]
    assert [p.name for p in tmp_path.iterdir()] == ["paper.json"]  # no temporary file left behind


def test_exactly_one_mode(capsys):
    assert main(["energy"]) == 2
    assert main(["energy", "--paper", "some.pt"]) == 2
    assert "give exactly one of --paper, --measure-gpu, CHECKPOINT or 'sweep'" in capsys.readouterr().err


def test_nvml_skip_without_cuda(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GPUUnavailable, match="skipped: no CUDA GPU"):
        measure_gpu_energy()
    out = tmp_path / "gpu.json"
    assert main(["energy", "--measure-gpu", "--json", str(out)]) == 0
    assert "measured GPU energy skipped: no CUDA GPU" in capsys.readouterr().out
    assert json.loads(out.read_text())["measured"] is None


def test_nvml_skip_without_pynvml(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(GPUUnavailable, match=r"pynvml is not installed \(pip install nvidia-ml-py\)"):
        gpu_measure.open_nvml()


def test_checkpoint_guard_when_play_for_energy_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mstpn.rl.evaluate", None)
    assert main(["energy", "agent.pt"]) == 2
    assert "not available yet" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "mstpn.rl.evaluate", types.ModuleType("mstpn.rl.evaluate"))
    assert main(["energy", "agent.pt"]) == 2
    assert "mstpn.rl.evaluate.play_for_energy is missing" in capsys.readouterr().err


def test_checkpoint_report_with_a_stand_in_player(monkeypatch, tmp_path, capsys):
    calls = {}

    def play_for_energy(checkpoint, episodes, seed, device_params):
        calls.update(checkpoint=checkpoint, episodes=episodes, seed=seed, params=device_params)
        records, cell = run_probe(steps=5, batch=episodes)
        return records, [5, 3][:episodes], cell

    fake = types.ModuleType("mstpn.rl.evaluate")
    fake.play_for_energy = play_for_energy
    monkeypatch.setitem(sys.modules, "mstpn.rl.evaluate", fake)
    out, png = tmp_path / "e.json", tmp_path / "e.png"
    code = main(["energy", "agent.pt", "--episodes", "2", "--seed", "3", "--json", str(out),
                 "--plot", str(png)])
    assert code == 0
    assert calls == {"checkpoint": "agent.pt", "episodes": 2, "seed": 3, "params": None}
    data = json.loads(out.read_text())
    assert data["games"] == 2 and data["steps_per_game"] == [5, 3] and data["checkpoint"] == "agent.pt"
    assert data["memristive_mj"]["system"]["total"] > data["memristive_mj"]["synaptic"]["total"]
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "a100.fp16.optimal" in capsys.readouterr().out


def test_sweep_command(monkeypatch, tmp_path, capsys):
    from mstpn.energy import sweep

    small = functools.partial(sweep.SweepConfig, input_size=8, hidden_size=3, thresholds=(0.0, 1.0),
                              biases=(0.3, 0.6), g_scales=(1.0, 2.0))
    monkeypatch.setattr(sweep, "SweepConfig", small)
    assert main(["energy", "sweep", "--out", str(tmp_path / "sw"), "--steps", "2"]) == 0
    names = sorted(p.name for p in (tmp_path / "sw").iterdir())
    assert names == ["sweep.csv", "sweep.json", "sweep.md", "sweep.png"]
    assert "## bias range" in capsys.readouterr().out
    assert main(["energy", "sweep"]) == 2


def test_nvml_loop_arithmetic_with_a_stand_in_counter():
    """The measurement loop against a fake NVML counter: 5 mJ per call, 2 W idle over the loop."""
    counter = {"mj": 0}

    def op():
        counter["mj"] += 5

    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(synchronize=lambda *a: None))
    fake_nvml = types.SimpleNamespace(nvmlDeviceGetTotalEnergyConsumption=lambda handle: counter["mj"])
    result = gpu_measure._median_energy(fake_torch, fake_nvml, None, op, runs=5, run_seconds=0.002,
                                        idle_w=0.0)
    assert result["total_j"] == pytest.approx(5e-3) and result["above_idle_j"] == pytest.approx(5e-3)
    assert result["calls_per_run"] >= 1 and result["time_s"] > 0
    idle = gpu_measure._median_energy(fake_torch, fake_nvml, None, op, runs=5, run_seconds=0.002,
                                      idle_w=2.0)
    assert idle["above_idle_j"] == pytest.approx(5e-3 - 2.0 * idle["time_s"], rel=0.2)
    assert idle["above_idle_j"] < idle["total_j"]
