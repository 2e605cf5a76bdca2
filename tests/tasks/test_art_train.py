"""ART training: parameter counts, a smoke test that learning happens, the CLI and the table."""

from __future__ import annotations

import json

import pytest

from mstpn.atomic import atomic_write_json
from mstpn.cli import main
from mstpn.devices import srtio3_weilenmann2024
from mstpn.errors import UserError
from mstpn.nn import MSTPNCell
from mstpn.tasks.art_report import art_table, load_results
from mstpn.tasks.art_train import ARTTrainConfig, art_mstpn_config, build_model, count_parameters, run


@pytest.mark.parametrize(("model", "expected"), [("stpn", 1715), ("mstpn", 1715), ("lstm", 1828),
                                                 ("rnn", 1390)])
def test_parameter_matched_models(model, expected):
    m = build_model(ARTTrainConfig(model=model))
    assert count_parameters(m) == expected  # all ~2k, as in the STPN paper
    assert m.readout.out_features == 10


def test_mstpn_uses_default_device_with_noise_on():
    core = build_model(ARTTrainConfig(model="mstpn", seed=3)).core
    assert isinstance(core, MSTPNCell)
    cfg = core.config
    assert cfg.c2c_noise and cfg.read_noise and cfg.d2d_variability and cfg.quantize
    assert cfg.soft_bounds and cfg.clip_range and cfg.write_threshold > 0 and core.seed == 3
    assert core.params == srtio3_weilenmann2024()
    assert cfg.pulse_v < core.params.v_th  # short-term writes only
    assert not cfg.row_norm  # the hardware mapping: presynaptic normalisation
    assert cfg.max_pulses * cfg.pulse_width <= cfg.dt_step  # the writes fit in one step
    with pytest.raises(UserError, match="do not fit"):
        art_mstpn_config(max_pulses=2000)


@pytest.mark.parametrize("model", ["stpn", "mstpn"])
def test_smoke_learning_happens(model):
    """A few quick epochs on 2k sequences: the loss falls and accuracy beats chance (10 %)."""
    config = ARTTrainConfig(model=model, epochs=4, train_size=2048, val_size=1000, test_size=1000,
                            lr=1e-2)
    record = run(config, progress=False)
    hist = record["history"]
    assert len(hist) == 4
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.1
    assert hist[-1]["val_acc"] > 0.14 and record["final_test_acc"] > 0.14
    if model == "mstpn":  # sparse writes, and the device energy is accounted
        probe = record["write_probe"]
        assert 0 < probe["write_fraction"] < 0.5
        assert all(v > 0 for v in probe["energy_per_sequence_j"].values())


def test_cli_writes_json_and_table(tmp_path, capsys):
    outs = []
    for seed in (0, 1):
        out = tmp_path / f"rnn_{seed}.json"
        code = main(["art", "--model", "rnn", "--epochs", "2", "--seed", str(seed), "--train-size", "256",
                     "--val-size", "100", "--test-size", "100", "--no-progress", "--json", str(out)])
        assert code == 0
        outs.append(out)
    data = json.loads(outs[0].read_text())
    assert data["model"] == "rnn" and data["parameters"] == 1390 and data["epochs_run"] == 2
    assert [row["epoch"] for row in data["history"]] == [1, 2]
    assert 0 <= data["final_test_acc"] <= 1
    assert list(tmp_path.glob("*.tmp")) == []  # atomic write leaves no temporary file
    assert main(["art-table", str(tmp_path), "--out", str(tmp_path / "table.md")]) == 0
    table = (tmp_path / "table.md").read_text()
    assert "| RNN | 20 | 1390 | 0, 1 |" in table
    capsys.readouterr()


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["art", "--model", "stpn", "--epochs", "0", "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epochs" in err[0]
    assert main(["art-table", str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit):
        main(["art", "--model", "gru", "--json", "x.json"])


def test_early_stopping_and_table_math(tmp_path):
    config = ARTTrainConfig(model="rnn", epochs=30, patience=1, train_size=128, val_size=50,
                            test_size=50, seed=2)
    record = run(config, progress=False)
    assert record["stopped_early"] and record["epochs_run"] < 30
    assert record["epochs_run"] - record["best_epoch"] == 1
    best = record["history"][record["best_epoch"] - 1]
    assert record["final_test_acc"] == best["test_acc"]
    for i, acc in enumerate((0.5, 0.7)):
        fake = dict(record, final_test_acc=acc, config=dict(record["config"], seed=i))
        atomic_write_json(tmp_path / f"r{i}.json", fake)
    table = art_table(load_results([tmp_path]))
    assert "60.00 ± 14.14" in table
    with pytest.raises(UserError):
        load_results([tmp_path / "nope.json"])
