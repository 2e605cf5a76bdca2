"""Report part 4: greedy Pong games of the trained agent, a GIF of one, and its learning curve.

The games are played once with the m-STPN's energy probe on (the probe only observes), so the
energy part reuses them instead of playing again.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from mstpn.atomic import atomic_write_bytes
from mstpn.report.document import Section
from mstpn.report.reproduce_context import Context, fmt, rel_diff, require_checkpoint, sh
from mstpn.tasks.pong import ATARI_HZ

TARGET_SCORE = 18.0
"""The project's target (issue 4): greedy mean score >= +18 over 10 games."""
PAPER_SYNAPSES = 169_984
"""STPN synapses of the reference agent, (2592 + 64) x 64 (PAPER.md)."""
PAPER_GAME_FRAMES = 48.7 * ATARI_HZ
"""Frames of one game in the paper's energy figure: 35.6 mJ / 0.731 mW = 48.7 s at 60 Hz (PAPER.md)."""


def play_games(checkpoint: str | os.PathLike, episodes: int, seed: int, *, gif_frames: list | None = None,
               gif_max_frames: int | None = None, device: str = "cpu") -> dict:
    """Greedy games on test seed ``seed`` with the checkpoint's agent on torch ``device``, the energy
    probe on for an m-STPN core.

    Returns the play result (``mean_score``, ``scores``, ``episode_steps``, ``episode_frames``) plus
    ``core``, ``frame_skip``, ``trained_frames``, ``synapses``, ``parameters``, and, for an m-STPN
    core, ``records`` (the probe's per-step records) and ``cell``.
    """
    from mstpn.rl.evaluate import load_agent, play
    from mstpn.tasks.pong import game_seed

    agent, saved = load_agent(checkpoint, device=device)
    frame_skip = int(saved.get("config", {}).get("frame_skip", 4))
    core = agent.config.core
    probe = core == "mstpn"
    if probe:
        agent.core.enable_energy_probe()
    result = play(agent, episodes, game_seed("test", seed, episodes), frame_skip, gif_frames=gif_frames,
                  gif_max_frames=gif_max_frames, progress=False)
    if probe:
        result["records"] = agent.core.energy_log
        result["cell"] = agent.core
        agent.core.enable_energy_probe(False)
    result.update(core=core, frame_skip=frame_skip, trained_frames=saved.get("frames"),
                  synapses=getattr(agent.core, "num_synapses", None),
                  parameters=sum(p.numel() for p in agent.parameters() if p.requires_grad))
    return result


def compact_frames(frames: list, colours: int = 64) -> list:
    """The frames on one shared palette without dithering: a GIF several times smaller.

    The palette comes from up to eight frames spread over the clip, so late colours are in it too.
    """
    from PIL import Image

    if not frames:
        return frames
    picks = frames[:: max(1, len(frames) // 8)][:8]
    width, height = picks[0].size
    montage = Image.new("RGB", (width, height * len(picks)))
    for i, frame in enumerate(picks):
        montage.paste(frame.convert("RGB"), (0, height * i))
    palette = montage.quantize(colors=colours, dither=Image.Dither.NONE)
    return [f.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]


def curve_path(checkpoint: Path) -> Path:
    """The learning-curve figure kept beside a checkpoint: ``<stem>_curve.png``."""
    return checkpoint.with_name(f"{checkpoint.stem}_curve.png")


def pong_part(ctx: Context, sec: Section) -> None:
    """Evaluate the checkpoint greedily; GIF of game 0's beginning; learning curve; targets."""
    from mstpn.rl.evaluate import save_gif, write_eval_json

    out = ctx.folder("pong")
    ckpt, episodes = ctx.checkpoint, ctx.budget.pong_episodes
    gif, eval_json = out / "game.gif", out / "eval.json"
    sec.command(sh("mstpn", "pong", "eval", ckpt, "--episodes", episodes, "--seed", ctx.seed,
                   "--gif", gif, "--json", eval_json) + "   # its GIF holds the whole first game")
    require_checkpoint(ckpt)
    ctx.say(f"{episodes} greedy game(s) on the test seeds")
    frames: list = []
    games = play_games(ckpt, episodes, ctx.seed, gif_frames=frames, gif_max_frames=ctx.budget.gif_frames)
    if "records" in games:
        ctx.shared["pong_games"] = games
    record = {k: games[k] for k in ("mean_score", "scores", "episode_steps", "episode_frames")}
    record.update(checkpoint=str(ckpt), core=games["core"], split="test", seed=ctx.seed, episodes=episodes,
                  trained_frames=games["trained_frames"])
    write_eval_json(record, eval_json)
    save_gif(compact_frames(frames), gif)

    scores, frames_per_game = games["scores"], games["episode_frames"]
    mean = games["mean_score"]
    spread = f" ± {statistics.stdev(scores):.1f}" if len(scores) > 1 else ""
    sec.figure(gif, f"The first {len(frames)} agent steps ({len(frames) * games['frame_skip']} frames) of "
                    f"greedy game 1: the game (the agent is the right paddle) beside the short-term "
                    f"weights |F| of the recurrent synapses.", width_px=520)
    curve = curve_path(ckpt)
    if curve.is_file():
        copied = atomic_write_bytes(out / "learning_curve.png", curve.read_bytes())
        sec.figure(copied, f"Learning curve of this agent's training ({curve}).")
    else:
        sec.text(f"No learning-curve figure beside the checkpoint (looked for `{curve}`); "
                 f"`mstpn pong curve RUN_FOLDER --out {curve}` draws one from a run folder.")
    trained = games["trained_frames"]
    syn = games["synapses"]
    sec.table(["quantity", "paper / target", "ours", "difference", "note"], [
        [f"greedy mean score, {episodes} game(s)", f"≥ +{TARGET_SCORE:g} over 10 games (project target)",
         f"{mean:+.2f}{spread}", f"{mean - TARGET_SCORE:+.2f} points",
         "PAPER.md: the m-STPN learns to play; it gives no score"],
        ["STPN-layer synapses", f"{PAPER_SYNAPSES:,}", "—" if syn is None else f"{syn:,}",
         "—" if syn is None else rel_diff(syn, PAPER_SYNAPSES), f"core: {games['core']}"],
        ["emulator frames per game (mean)", f"≈ {PAPER_GAME_FRAMES:,.0f} (48.7 s at 60 Hz)",
         fmt(statistics.fmean(frames_per_game)),
         rel_diff(statistics.fmean(frames_per_game), PAPER_GAME_FRAMES),
         "paper's figure derived from its energy numbers"],
        ["frame skip", "1 (none)", str(games["frame_skip"]), "—", "documented adaptation (DESIGN.md)"],
        ["training frames", "up to 1e8", "—" if trained is None else f"{trained:,}", "—", ""],
    ], caption=f"Checkpoint `{ckpt}`, {games['parameters']:,} trainable parameters; greedy actions "
               f"(argmax), test seed {ctx.seed} (games nobody chose the agent on).")
    sec.table(["game", "score", "agent steps", "emulator frames"],
              [[str(i + 1), f"{s:+.0f}", str(n), str(f)] for i, (s, n, f) in
               enumerate(zip(scores, games["episode_steps"], frames_per_game, strict=True))])
    sec.summary = (f"greedy mean score {mean:+.1f} over {episodes} game(s) "
                   f"(target ≥ +{TARGET_SCORE:g} over 10)")
