"""The Pong actor-critic: the reference conv trunk, a recurrent core, actor and critic heads.

Cores: ``stpn`` (STPNCell H=64), ``mstpn`` (MSTPNCell H=64 on the SrTiO3 device), ``lstm`` (LSTM-48,
parameter-matched as in the reference). With the 2592 conv features the (m-)STPN layer has
(2592 + 64) x 64 = 169,984 synapses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import Tensor, nn

from mstpn.devices.params import SrTiO3Params
from mstpn.errors import UserError
from mstpn.nn.mstpn import MSTPNCell, MSTPNConfig
from mstpn.nn.stpn import STPNCell

CORES = ("stpn", "mstpn", "lstm")
INITS = ("torch", "orthogonal")
FEATURES = 2592  # 32 x 9 x 9 after the two convolutions on 84 x 84


@dataclass(frozen=True)
class AgentConfig:
    """Which network the agent is; stored in every checkpoint so the agent can be rebuilt."""

    core: str = "mstpn"
    """Recurrent core: stpn, mstpn or lstm."""
    hidden_size: int = 0
    """Core units; 0 = the reference size (64 for stpn/mstpn, 48 for lstm)."""
    num_actions: int = 6
    """Size of the action space."""
    device_params: dict = field(default_factory=dict)
    """SrTiO3Params fields for the mstpn core (empty = the default preset)."""
    mstpn: dict = field(default_factory=dict)
    """MSTPNConfig fields for the mstpn core (empty = defaults)."""
    init: str = "orthogonal"
    """Initial weights of trunk and heads: ``torch`` (PyTorch's defaults) or ``orthogonal``
    (orthogonal, gain sqrt 2 in the trunk, 0.01 on the actor so the first policy is near uniform,
    1 on the critic; zero biases). The core keeps its own initialisation."""

    def __post_init__(self) -> None:
        if self.core not in CORES:
            raise UserError(f"core: must be one of {', '.join(CORES)}, got {self.core!r}")
        if self.init not in INITS:
            raise UserError(f"init: must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.hidden_size < 0:
            raise UserError(f"hidden_size: must be >= 0, got {self.hidden_size}")

    @property
    def hidden(self) -> int:
        return self.hidden_size or (48 if self.core == "lstm" else 64)

    def to_dict(self) -> dict:
        return asdict(self)


def build_core(config: AgentConfig, input_size: int) -> nn.Module:
    """The recurrent core named by ``config.core``."""
    if config.core == "stpn":
        return STPNCell(input_size, config.hidden)
    if config.core == "mstpn":
        params = SrTiO3Params.from_dict(config.device_params) if config.device_params else None
        return MSTPNCell(input_size, config.hidden, params, MSTPNConfig(**config.mstpn))
    from mstpn.nn.baselines import LSTMCell

    return LSTMCell(input_size, config.hidden)


def mask_state(state: tuple, keep: Tensor) -> tuple:
    """Zero the recurrent and synaptic state of the games whose ``keep`` is 0 (episode ends)."""
    if bool(keep.all()):
        return state
    return type(state)(*(s * keep.view(-1, *([1] * (s.dim() - 1))).to(s.dtype) for s in state))


class ActorCritic(nn.Module):
    """Conv(1->16, 8x8, s4)+ReLU, Conv(16->32, 4x4, s2)+ReLU, core, Linear actor and critic."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 16, 8, stride=4), nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )
        self.core = build_core(config, FEATURES)
        self.actor = nn.Linear(config.hidden, config.num_actions)
        self.critic = nn.Linear(config.hidden, 1)
        if config.init == "orthogonal":
            convs = [m for m in self.trunk if isinstance(m, nn.Conv2d)]
            for module, gain in [*((c, 2 ** 0.5) for c in convs), (self.actor, 0.01), (self.critic, 1.0)]:
                nn.init.orthogonal_(module.weight, gain)
                nn.init.zeros_(module.bias)

    @property
    def num_synapses(self) -> int:
        """Plastic synapses of the core (0 for the LSTM)."""
        return getattr(self.core, "num_synapses", 0)

    def initial_state(self, batch_size: int) -> tuple:
        return self.core.initial_state(batch_size)

    def features(self, obs: Tensor) -> Tensor:
        """uint8 frames (B, 1, 84, 84) -> conv features (B, 2592)."""
        return self.trunk((obs.float() - 128.0) / 128.0)

    def forward(self, obs: Tensor, state: tuple) -> tuple[Tensor, Tensor, tuple]:
        """One step: action logits (B, A), values (B,), new state."""
        h, state = self.core(self.features(obs), state)
        return self.actor(h), self.critic(h).squeeze(-1), state

    def describe(self) -> str:
        """Parameter and synapse counts, for the log."""
        total = sum(p.numel() for p in self.parameters())
        core = sum(p.numel() for p in self.core.parameters())
        return (f"agent: core={self.config.core} H={self.config.hidden} parameters={total:,} "
                f"(core {core:,}) synapses={self.num_synapses:,}")
