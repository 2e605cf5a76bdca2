"""Pong throughput: raw vectorised env steps/s, and A2C training env-steps/s with the m-STPN and the
LSTM core, in one run on this machine, with a per-part breakdown of one update. Writes JSON.

    python benchmarks/pong_throughput.py [--updates 12] [--device cpu|cuda]
                                         [--out benchmarks/results/pong_throughput.json]

Training speed is measured from the trainer's own metrics log after warm-up updates (which include
torch.compile of the m-STPN kernels), so it is what a real run sees. The breakdown replays the same
A2C update (rollout, loss, backward, optimizer) with a timer around each part: env stepping, the
conv trunk, the recurrent core's forward, heads and sampling, the backward of the whole update and
the optimizer step (ms per update, median over the timed updates).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from mstpn.atomic import atomic_write_json
from mstpn.memory import reuse_freed_memory
from mstpn.rl import a2c
from mstpn.rl.agent import ActorCritic, AgentConfig, mask_state
from mstpn.rl.common import discounted_advantages, machine_info, resolve_device, sample_actions
from mstpn.tasks.pong import PongConfig, make_pong

DEFAULTS = a2c.A2CConfig()
NUM_ENVS, ROLLOUT = DEFAULTS.num_envs, DEFAULTS.rollout


def raw_env_steps_per_s(num_envs: int, seconds: float) -> float:
    env = make_pong(PongConfig(num_envs=num_envs))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, 6, size=num_envs))
        steps += num_envs
    env.close()
    return steps / (time.perf_counter() - start)


def training_steps_per_s(core: str, updates: int, warmup: int, torch_threads: int, device: str) -> float:
    config = a2c.A2CConfig(frames=(warmup + updates) * NUM_ENVS * ROLLOUT * 4, log_every=1,
                           torch_threads=torch_threads, device=device, agent=AgentConfig(core=core))
    with tempfile.TemporaryDirectory() as tmp:
        a2c.train(config, Path(tmp) / "run", progress=False)
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[warmup - 1], rows[-1]
    return (last["update"] - first["update"]) * config.steps_per_update / (last["wall_s"] - first["wall_s"])


class PartTimer:
    """Accumulates wall time per named part (synchronising CUDA first, so the times are honest)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.totals: dict[str, float] = defaultdict(float)

    def __call__(self, name: str):
        timer = self

        class _Part:
            def __enter__(self):
                if timer.cuda:
                    torch.cuda.synchronize()
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                if timer.cuda:
                    torch.cuda.synchronize()
                timer.totals[name] += time.perf_counter() - self.start

        return _Part()


def update_breakdown(core: str, updates: int, warmup: int, device: torch.device) -> dict[str, float]:
    """Median ms per A2C update of each part and of the whole (the update of mstpn.rl.a2c with its
    default configuration, timed piece by piece)."""
    cfg = DEFAULTS
    torch.manual_seed(0)
    agent = ActorCritic(AgentConfig(core=core)).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    env = make_pong(PongConfig(num_envs=NUM_ENVS))
    obs, _ = env.reset(seed=0)
    obs = torch.from_numpy(obs).to(device)
    state = agent.initial_state(NUM_ENVS)
    generator = torch.Generator(device=device).manual_seed(0)
    per_update: dict[str, list[float]] = defaultdict(list)
    for update in range(warmup + updates):
        timer = PartTimer(device)
        state = type(state)(*(s.detach() for s in state))
        log_probs, values, entropies, rewards, dones = [], [], [], [], []
        for _ in range(ROLLOUT):
            with timer("conv_trunk_forward"):
                features = agent.features(obs)
            with timer("core_forward"):
                h, state = agent.core(features, state)
            with timer("heads_and_sampling"):
                logits, value = agent.actor(h), agent.critic(h).squeeze(-1)
                action = sample_actions(logits, generator)
                log_prob_all = torch.log_softmax(logits, dim=-1)
                log_probs.append(log_prob_all.gather(1, action[:, None]).squeeze(1))
                entropies.append(-(log_prob_all.exp() * log_prob_all).sum(-1))
                values.append(value)
                actions = action.cpu().numpy()
            with timer("env"):
                next_obs, reward, terminated, truncated, _ = env.step(actions)
            with timer("bookkeeping"):
                done = np.logical_or(terminated, truncated)
                rewards.append(torch.as_tensor(reward, dtype=torch.float32, device=device))
                dones.append(torch.as_tensor(done, dtype=torch.float32, device=device))
                state = mask_state(state, 1.0 - dones[-1])
                obs = torch.from_numpy(next_obs).to(device)
        with timer("bootstrap_forward"), torch.no_grad():
            _, next_value, _ = agent(obs, state)
        with timer("loss"):
            values_t = torch.stack(values)
            advantages, returns = discounted_advantages(torch.stack(rewards), values_t.detach(),
                                                        torch.stack(dones), next_value, cfg.gamma,
                                                        cfg.gae_lambda)
            value_loss = 0.5 * (returns - values_t).pow(2).mean()
            loss = (-(advantages * torch.stack(log_probs)).mean() + cfg.value_coef * value_loss
                    - cfg.entropy_coef * torch.stack(entropies).mean())
            optimizer.zero_grad(set_to_none=True)
        with timer("backward"):
            loss.backward()
        with timer("optimizer"):
            torch.nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
            optimizer.step()
        if update >= warmup:
            for name, seconds in timer.totals.items():
                per_update[name].append(seconds)
            per_update["total"].append(sum(timer.totals.values()))
    env.close()
    return {name: round(1e3 * statistics.median(v), 2) for name, v in per_update.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=12, help="timed updates per core (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates (compile, caches)")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    parser.add_argument("--out", default="benchmarks/results/pong_throughput.json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.torch_threads)
    reuse_freed_memory()
    raw = raw_env_steps_per_s(NUM_ENVS, 10.0)
    cores = ("mstpn", "lstm")
    speed = {core: training_steps_per_s(core, args.updates, args.warmup, args.torch_threads, args.device)
             for core in cores}
    breakdown = {core: update_breakdown(core, args.updates, args.warmup, device) for core in cores}
    mstpn, lstm = speed["mstpn"], speed["lstm"]
    result = {
        "raw_env_steps_per_s": round(raw, 1), "a2c_mstpn_env_steps_per_s": round(mstpn, 1),
        "a2c_lstm_env_steps_per_s": round(lstm, 1),
        "mstpn_frames_per_s": round(4 * mstpn, 1), "mstpn_vs_raw_env": round(mstpn / raw, 3),
        "mstpn_vs_lstm": round(mstpn / lstm, 3),
        "breakdown_ms_per_update": breakdown,
        "setup": {"num_envs": NUM_ENVS, "rollout": ROLLOUT, "frame_skip": 4,
                  "torch_threads": args.torch_threads, "timed_updates": args.updates, "device": str(device)},
        "machine": machine_info(),
    }
    if device.type == "cuda":
        result["machine"]["gpu"] = torch.cuda.get_device_name(device)
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
