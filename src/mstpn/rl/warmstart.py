"""Start a new training run from a trained agent's learned weights (``TrainerConfig.init_from``).

Only the learned parameters are copied (the trunk, the core's weights, biases, bias logits and
plasticity, the heads). The m-STPN's per-synapse device properties (the ``tau0``, ``g_min``,
``g_max``, ``a_st`` buffers) and its noise state are not: the new run draws its devices from its own
``device_params`` and seed, as ``mstpn pong eval --device-params`` does, so fine-tuning on another
device trains on that device. The new agent may differ from the stored one only where no parameter
shape changes: its device and its driver settings (``agent.mstpn``). When the driver's bias range
changes, each synapse keeps its learned bias voltage, clipped into the new range.
"""

from __future__ import annotations

import os

import torch

from mstpn.errors import UserError
from mstpn.nn.mstpn import MSTPNConfig
from mstpn.rl.agent import ActorCritic, AgentConfig
from mstpn.rl.checkpoint import load_checkpoint


def carried_bias_logit(logit: torch.Tensor, old: MSTPNConfig, new: MSTPNConfig) -> torch.Tensor:
    """The bias logits that give, under the driver range of ``new``, the bias voltages ``logit`` gave
    under ``old``, clipped into the new range (ends kept 1e-6 inside, so the logits stay finite)."""
    v = old.v_b_min + (old.v_b_max - old.v_b_min) * torch.sigmoid(logit)
    frac = (v.clamp(new.v_b_min, new.v_b_max) - new.v_b_min) / (new.v_b_max - new.v_b_min)
    frac = frac.clamp(1e-6, 1 - 1e-6)
    return torch.log(frac) - torch.log1p(-frac)


def copy_learned(agent: ActorCritic, path: str | os.PathLike) -> dict:
    """Copy the learned parameters of the agent stored at ``path`` into ``agent`` (in place).

    Refuses with a :class:`UserError` naming ``init_from`` when the stored agent has another core,
    size or action count, or any parameter of another shape. Returns the loaded checkpoint.
    """
    saved = load_checkpoint(path)
    try:
        old = AgentConfig(**saved["agent_config"])
        model = saved["model"]
    except (KeyError, TypeError) as exc:
        raise UserError(f"init_from {path}: the checkpoint has no valid agent ({exc})") from None
    new = agent.config
    params = dict(agent.named_parameters())
    differ = [f"{name} {getattr(old, name)!r} there vs {getattr(new, name)!r} here"
              for name in ("core", "hidden", "num_actions") if getattr(old, name) != getattr(new, name)]
    if not differ:
        differ = [f"{key} missing there" for key in params if key not in model]
        differ += [f"{key} {tuple(model[key].shape)} there vs {tuple(p.shape)} here"
                   for key, p in params.items() if key in model and tuple(model[key].shape) != tuple(p.shape)]
    if differ:
        raise UserError(f"init_from {path}: the stored agent does not fit this run's "
                        f"({'; '.join(differ[:3])}); only the device (agent.device_params) and "
                        "driver settings (agent.mstpn) may differ")
    with torch.no_grad():
        for key, p in params.items():
            p.copy_(model[key])
        if new.core == "mstpn":
            old_driver, new_driver = MSTPNConfig(**old.mstpn), agent.core.config
            if (old_driver.v_b_min, old_driver.v_b_max) != (new_driver.v_b_min, new_driver.v_b_max):
                logit = agent.core.bias_logit
                logit.copy_(carried_bias_logit(logit, old_driver, new_driver))
    return saved
