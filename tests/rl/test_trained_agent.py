"""The committed Pong agent: it is the m-STPN the README describes, and it still wins.

Guards against changes to the device model or the m-STPN cell that would silently break the
trained weights (the full 10-game check is `mstpn pong eval checkpoints/pong_mstpn.pt`).
"""

from __future__ import annotations

from pathlib import Path

from mstpn.devices.params import SrTiO3Params
from mstpn.nn.mstpn import MSTPNConfig
from mstpn.rl.evaluate import evaluate, load_agent

AGENT = Path(__file__).resolve().parents[2] / "checkpoints" / "pong_mstpn.pt"


def test_committed_agent_is_the_default_mstpn_and_wins_greedy_games():
    result = evaluate(AGENT, episodes=2, seed=0, split="raw", progress=False)
    assert result["core"] == "mstpn"
    assert result["trained_frames"] == 41_600_000
    # two greedy games, env seed 0: +21 and +19 when this test was written
    assert all(score >= 18 for score in result["scores"]), result["scores"]


def test_committed_agent_runs_on_the_default_preset_with_every_non_ideality_on():
    agent, _ = load_agent(AGENT)
    assert agent.core.params == SrTiO3Params()
    config = agent.core.config
    default = MSTPNConfig()
    for flag in ("quantize", "soft_bounds", "clip_range", "c2c_noise", "read_noise", "d2d_variability"):
        assert getattr(config, flag) is True, flag
    assert config.max_pulses == default.max_pulses and config.pulse_v == default.pulse_v
