"""Which command-line flags may come with ``mstpn pong train --resume``, and what they do.

A resumed run continues the stored one. A flag that only says how long or where the run is computed
or how often it is validated (its budget, threads, torch device, validation) applies; a flag that
would change what is trained (learning rate, seed, games, network, algorithm, ...) is refused unless
it repeats the stored value, so no flag is ever silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mstpn.errors import UserError
from mstpn.rl.run import SAFE_ON_RESUME, TrainerConfig


def _device_params(path: str) -> dict:
    from mstpn.devices.params import load_params

    return load_params(path).to_dict()


@dataclass(frozen=True)
class ResumeFlag:
    """One ``mstpn pong train`` flag and the stored-configuration field it sets."""

    option: str
    """The flag as typed, e.g. ``--lr``."""
    key: str
    """Its field in the stored configuration (dotted for the agent's, e.g. ``agent.core``)."""
    convert: Callable[[Any], Any] | None = None
    """Turns the flag's value into the field's (default: as is)."""

    @property
    def dest(self) -> str:
        """The flag's attribute on the parsed arguments."""
        return self.option.removeprefix("--").replace("-", "_")

    @property
    def field(self) -> str:
        """The field's own name (the last part of ``key``)."""
        return self.key.rsplit(".", 1)[-1]

    @property
    def safe(self) -> bool:
        """True when the flag may change on resume (it then applies)."""
        return self.key in SAFE_ON_RESUME


RESUME_FLAGS = tuple(ResumeFlag(*spec) for spec in (
    ("--frames", "frames"), ("--torch-threads", "torch_threads"), ("--env-threads", "env_threads"),
    ("--device", "device"), ("--validate-every", "validate_every"),
    ("--validation-games", "validation_games"), ("--algo", "algo"), ("--core", "agent.core"),
    ("--seed", "seed"), ("--num-envs", "num_envs"), ("--frame-skip", "frame_skip"),
    ("--rollout", "rollout"), ("--gae-lambda", "gae_lambda"), ("--lr", "lr"),
    ("--entropy-coef", "entropy_coef"),
    ("--checkpoint-every", "checkpoint_every"), ("--init-from", "init_from"),
    ("--device-params", "agent.device_params", _device_params),
))
"""Every ``mstpn pong train`` flag that sets a configuration field (``--no-progress`` sets none)."""
FLAGS_BY_OPTION = {flag.option: flag for flag in RESUME_FLAGS}


def given_flags(args: Any) -> dict[str, Any]:
    """The configuration flags typed on the command line: option -> value (argparse default None)."""
    return {f.option: getattr(args, f.dest) for f in RESUME_FLAGS if getattr(args, f.dest) is not None}


def _stored(stored: dict, key: str) -> Any:
    value: Any = stored
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if key == "agent.device_params" and not value:
        from mstpn.devices.params import srtio3_weilenmann2024

        value = srtio3_weilenmann2024().to_dict()  # an empty dict means the default preset
    return value


def _show(flag: ResumeFlag, stored: dict) -> str:
    value = _stored(stored, flag.key)
    if flag.key == "agent.device_params":
        from mstpn.devices.params import srtio3_weilenmann2024

        preset = value == srtio3_weilenmann2024().to_dict()
        return f"{flag.field} of {'the SrTiO3 preset' if preset else 'another parameter file'}"
    return f"{flag.field} {value}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def resume_changes(stored: dict, given: dict[str, Any]) -> dict[str, Any]:
    """The configuration fields to change when resuming ``stored`` with the flags ``given``.

    ``stored``: the run's configuration (``TrainerConfig.to_dict()`` plus ``algo``); ``given``: the
    flags typed on the command line, option -> value (see :func:`given_flags`). Safe flags are
    returned as ``{field: value}``; a flag that repeats the stored value is accepted; any other raises
    one :class:`UserError` naming every offending flag and the stored values.
    """
    changes, refused = {}, []
    for option, raw in given.items():
        flag = FLAGS_BY_OPTION[option]
        value = flag.convert(raw) if flag.convert else raw
        if flag.safe:
            changes[flag.key] = value
        elif value != _stored(stored, flag.key):
            refused.append((flag, raw))
    if refused:
        them = "it" if len(refused) == 1 else "them"
        raise UserError(f"--resume: {_join([f'{flag.option} {raw}' for flag, raw in refused])} would "
                        f"change the stored run ({', '.join(_show(flag, stored) for flag, _ in refused)}); "
                        f"drop {them} or start a new --out")
    return changes


def resumed_config(out: str | Path, given: dict[str, Any]) -> tuple[ModuleType, TrainerConfig]:
    """The stored run in ``out`` with the ``given`` flags applied (or refused): (trainer module, config)."""
    import dataclasses
    import importlib

    from mstpn.rl.checkpoint import load_checkpoint

    path = Path(out) / "checkpoint.pt"
    if not path.exists():
        raise UserError(f"--resume: no checkpoint at {path}")
    saved = load_checkpoint(path)
    algo = saved.get("kind")
    if algo not in ("a2c", "ppo"):
        raise UserError(f"{path}: not a training checkpoint (kind {algo!r}, expected a2c or ppo)")
    changes = resume_changes({**saved["config"], "algo": algo}, given)
    module = importlib.import_module(f"mstpn.rl.{algo}")
    config_cls = module.A2CConfig if algo == "a2c" else module.PPOConfig
    return module, dataclasses.replace(config_cls.from_dict(saved["config"]), **changes)
