"""PopSAN-style spiking actor: population encoder -> spiking MLP -> population decoder.

``obs [batch, obs_dim]`` -> ``tanh(obs)`` -> Gaussian population encoder (``enc_pop`` neurons per
observation dim, regular spike trains over ``T`` steps) -> spiking hidden layers (default
256-256) -> output population (``dec_pop`` neurons per action dim) -> firing rates (spike
count / ``T``) -> per-action linear readout -> ``max_action * tanh(.)``.

The network is feed-forward within a time step, so each layer is run over all ``T`` steps
before the next (one matmul per layer for the whole spike train, then the neuron's fused
``unroll`` over ``T``); this equals the step-interleaved simulation. ``set_fused(actor, False)``
switches every layer back to the reference step loop (for tests and the speed benchmark).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from modules.popsan.decoder import PopulationDecoder
from modules.popsan.encoder import PopulationEncoder
from modules.popsan.neurons import POPSAN_NEURONS, PopSANNeuron
from utils.registry import lookup
from modules.agents.ann_actor import action_bound


UNROLL_MODES = ("fused", "steps")


class SpikingLayer(nn.Module):
    """Synapses (``nn.Linear``) + PopSAN neurons: spikes ``[T, batch, in]`` -> ``[T, batch, out]``."""

    def __init__(self, in_dim: int, out_dim: int, neuron: PopSANNeuron, fused: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.neuron = neuron
        self.out_dim = out_dim
        self.fused = bool(fused)

    def forward(self, x: Tensor) -> Tensor:
        """``x [T, batch, in]`` -> spikes ``[T, batch, out]`` (state starts at zero)."""
        currents = self.fc(x)                                         # [T, batch, out]
        return self.neuron.unroll(currents) if self.fused else self.neuron.unroll_steps(currents)


class SpikingActor(nn.Module):
    """Deterministic spiking policy ``obs [batch, obs_dim] -> action [batch, act_dim]``.

    ``max_action``: a float or a per-dimension sequence (symmetric bounds ``[-m, m]``).
    ``neuron``: a key of ``POPSAN_NEURONS`` ("lif" | "clif" | "dn"); ``neuron_kwargs``: extra
    constructor arguments of that neuron (e.g. ``{"theta_u_sign": -1}`` for DN).
    ``unroll``: "fused" (the neuron's fused ``unroll``) or "steps" (the reference step loop).
    ``enc_std``: initial std of the Gaussian receptive fields (default ``sqrt(0.05)``, the Proxy
    Target authors' released value).
    """

    def __init__(self, obs_dim: int, act_dim: int, max_action: Union[float, Sequence[float]],
                 neuron: str = "lif", T: int = 5, enc_pop: int = 10, dec_pop: int = 10,
                 hidden: Sequence[int] = (256, 256), enc_mean_range: Sequence[float] = (-1.0, 1.0),
                 enc_std: float = 0.05 ** 0.5, surrogate_width: float = 1.0,
                 neuron_kwargs: Optional[Dict[str, Any]] = None, unroll: str = "fused") -> None:
        super().__init__()
        neuron_cls = lookup(POPSAN_NEURONS, neuron, what="actor_neuron")
        if len(hidden) < 1:
            raise ValueError("popsan_hidden needs at least one hidden layer size")
        if unroll not in UNROLL_MODES:
            raise ValueError(f"popsan_unroll must be one of {', '.join(UNROLL_MODES)}, got '{unroll}'")
        self.obs_dim, self.act_dim, self.T = obs_dim, act_dim, T
        self.neuron_name = neuron
        self.encoder = PopulationEncoder(obs_dim, enc_pop, T, enc_mean_range, enc_std, squash=True)
        sizes = [self.encoder.out_dim] + [int(h) for h in hidden] + [act_dim * dec_pop]
        self.layers = nn.ModuleList(
            SpikingLayer(sizes[i], sizes[i + 1],
                         neuron_cls(surrogate_width=surrogate_width, **(neuron_kwargs or {})),
                         fused=unroll == "fused")
            for i in range(len(sizes) - 1))
        self.decoder = PopulationDecoder(act_dim, dec_pop)
        self.register_buffer("max_action", action_bound(max_action, act_dim))

    def forward_with_rates(self, obs: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """Action ``[batch, act_dim]`` and each spiking layer's firing rate ``[batch, n_l]``.

        Rates are spike counts over the ``T`` steps divided by ``T`` (index 0: first hidden layer,
        last: output population).
        """
        x = self.encoder(obs)                                         # [T, batch, enc]
        rates = []
        for layer in self.layers:
            x = layer(x)
            rates.append(x.mean(0))
        action = self.max_action * torch.tanh(self.decoder(rates[-1]))
        return action, rates

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [batch, obs_dim]`` -> action ``[batch, act_dim]`` in ``[-max_action, max_action]``."""
        x = self.encoder(obs)                                         # [T, batch, enc]
        for layer in self.layers:
            x = layer(x)
        return self.max_action * torch.tanh(self.decoder(x.mean(0)))


def set_fused(actor: nn.Module, fused: bool) -> None:
    """Run every ``SpikingLayer`` of ``actor`` with the fused ``unroll`` (True) or the reference
    step loop (False); same results, different speed."""
    for m in actor.modules():
        if isinstance(m, SpikingLayer):
            m.fused = bool(fused)
