"""Spiking neuron dynamics of the PopSAN-style actor: LIF, CLIF and DN.

Each neuron here is parameter-free: it maps an input current ``i_t`` (the output of the
layer's synapses, ``[batch, n]``) and its state to spikes ``[batch, n]`` and a new state. The
synaptic weights live in ``modules.popsan.actor.SpikingLayer``. All spikes use the
rectangular surrogate gradient of ``modules.neurons.surrogate`` (window ``|v - theta| < w/2``,
height ``1/w``; default ``w = 1`` as in PopSAN).

Update rules (``s_{t-1}`` the previous spikes, ``theta`` the threshold, hard reset to 0):

* LIF:  ``v_t = decay_v * v_{t-1} * (1 - s_{t-1}) + i_t``;  ``s_t = H(v_t - theta)``.
  Defaults ``decay_v = 0.75``, ``theta = 0.5``.
* CLIF: an extra current state, ``c_t = decay_c * c_{t-1} + i_t``, then the LIF rule with
  ``c_t`` in place of ``i_t``. Defaults ``decay_c = 0.5``, ``decay_v = 0.75``, ``theta = 0.5``.
* DN (the 2nd-order dynamic neuron of MDC-SAN, Zhang et al., AAAI 2022), with current ``c``,
  membrane ``v`` and recovery ``u``:

  ``c_t = decay_c * c_{t-1} + i_t``
  reset by the previous spike: ``v' = v_{t-1} (1 - s_{t-1}) + theta_r s_{t-1}``,
  ``u' = u_{t-1} + theta_s s_{t-1}``
  ``v_t = v' + (v'^2 - v' - u' + c_t)``
  ``u_t = u' + (theta_v v' + sign * theta_u u')``,  ``sign = theta_u_sign`` (+1 or -1)
  ``s_t = H(v_t - theta)``

  with the published constants ``theta_v = -0.172``, ``theta_u = 0.529``,
  ``theta_r = 0.021``, ``theta_s = 0.132``, ``decay_c = 0.5``, ``theta = 0.5``. The Proxy Target
  authors' released code adds ``theta_u u'`` (``sign = +1``, the default here, since it produced
  the paper's DN numbers); MDC-SAN's equation subtracts it (``sign = -1``: the recovery decays).

The state is a tuple of tensors, each ``[batch, n]``; the last element is always the
previous spikes.

``step`` is the reference, one time step at a time. ``unroll(currents [T, batch, n])`` runs a
whole spike train from the zero state: LIF and CLIF through the fused membrane kernel of
``modules.neurons.scan`` (one ``torch.autograd.Function`` with a hand-written backward; same
spikes and, up to float rounding, the same gradients as the step loop, including the gradient
through the reset by the previous spike); DN through the step loop.
"""
from __future__ import annotations

from typing import Dict, Tuple, Type

import torch
from torch import Tensor, nn

from modules.neurons.scan import membrane_scan
from modules.neurons.surrogate import spike

State = Tuple[Tensor, ...]


class PopSANNeuron(nn.Module):
    """Base class: ``init_state(batch, n)`` and ``step(i_t, state) -> (spikes, state)``."""

    n_state: int = 2

    def __init__(self, threshold: float = 0.5, surrogate_width: float = 1.0) -> None:
        super().__init__()
        if surrogate_width <= 0:
            raise ValueError(f"surrogate_width must be > 0, got {surrogate_width}")
        self.threshold = float(threshold)
        self.surrogate_width = float(surrogate_width)

    def fire(self, v: Tensor) -> Tensor:
        """Spikes ``H(v - theta)`` with the rectangular surrogate; shape of ``v``."""
        return spike(v - self.threshold, kind="rect", alpha=self.surrogate_width)

    def init_state(self, batch: int, n: int, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> State:
        """Zero state: ``n_state`` tensors of shape ``[batch, n]``."""
        return tuple(torch.zeros(batch, n, device=device, dtype=dtype) for _ in range(self.n_state))

    def step(self, i_t: Tensor, state: State) -> Tuple[Tensor, State]:  # pragma: no cover
        raise NotImplementedError

    def unroll_steps(self, currents: Tensor) -> Tensor:
        """Reference: ``step`` over ``currents [T, batch, n]`` from the zero state -> spikes ``[T, batch, n]``."""
        state = self.init_state(currents.shape[1], currents.shape[2], currents.device, currents.dtype)
        out = []
        for i_t in currents.unbind(0):
            s, state = self.step(i_t, state)
            out.append(s)
        return torch.stack(out, 0)

    def unroll(self, currents: Tensor) -> Tensor:
        """Spikes ``[T, batch, n]`` for input currents ``[T, batch, n]`` from the zero state."""
        return self.unroll_steps(currents)


def _lif_scan(currents: Tensor, decay_v: float, threshold: float, width: float) -> Tensor:
    """Fused PopSAN LIF, ``v_t = decay_v v_{t-1} (1 - s_{t-1}) + i_t``, over ``currents [T, batch, n]``.

    ``membrane_scan`` runs ``u_t = beta uhat_{t-1} + (1 - beta) cur_t`` with the hard reset
    ``uhat_t = (1 - o_t) u_t``: the same recursion with ``beta = decay_v`` and
    ``cur = i / (1 - decay_v)`` (exact in float for the default 0.75, a power-of-two scale).
    """
    beta = currents.new_full((currents.shape[-1],), decay_v)
    zero = currents.new_zeros(currents.shape[1:])
    spikes, _, _ = membrane_scan(currents / (1.0 - decay_v), zero, beta, threshold, soft=False,
                                 surrogate="rect", alpha=width)
    return spikes


def _check_decay(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"PopSAN neuron {name} must be in [0, 1), got {value}")
    return float(value)


class LIFNeuron(PopSANNeuron):
    """Leaky integrate-and-fire, hard reset. State ``(v, s)``."""

    n_state = 2

    def __init__(self, decay_v: float = 0.75, threshold: float = 0.5,
                 surrogate_width: float = 1.0) -> None:
        super().__init__(threshold, surrogate_width)
        self.decay_v = _check_decay("decay_v", decay_v)

    def unroll(self, currents: Tensor) -> Tensor:
        """Fused over ``T``: spikes ``[T, batch, n]`` for currents ``[T, batch, n]``."""
        return _lif_scan(currents, self.decay_v, self.threshold, self.surrogate_width)

    def step(self, i_t: Tensor, state: State) -> Tuple[Tensor, State]:
        """``i_t``: input current ``[batch, n]`` -> spikes ``[batch, n]``, new ``(v, s)``."""
        v, s = state
        v = self.decay_v * v * (1.0 - s) + i_t
        s = self.fire(v)
        return s, (v, s)


class CLIFNeuron(PopSANNeuron):
    """Current-based LIF (the PopSAN neuron). State ``(c, v, s)``."""

    n_state = 3

    def __init__(self, decay_c: float = 0.5, decay_v: float = 0.75, threshold: float = 0.5,
                 surrogate_width: float = 1.0) -> None:
        super().__init__(threshold, surrogate_width)
        self.decay_c = _check_decay("decay_c", decay_c)
        self.decay_v = _check_decay("decay_v", decay_v)

    def unroll(self, currents: Tensor) -> Tensor:
        """Current filter ``c_t = decay_c c_{t-1} + i_t`` (linear, T small ops), then the fused LIF."""
        cs, c = [], None
        for i_t in currents.unbind(0):
            c = i_t if c is None else self.decay_c * c + i_t
            cs.append(c)
        return _lif_scan(torch.stack(cs, 0), self.decay_v, self.threshold, self.surrogate_width)

    def step(self, i_t: Tensor, state: State) -> Tuple[Tensor, State]:
        """``i_t``: input current ``[batch, n]`` -> spikes ``[batch, n]``, new ``(c, v, s)``."""
        c, v, s = state
        c = self.decay_c * c + i_t
        v = self.decay_v * v * (1.0 - s) + c
        s = self.fire(v)
        return s, (c, v, s)


class DNNeuron(PopSANNeuron):
    """Dynamic neuron of MDC-SAN (2nd-order: membrane ``v`` and recovery ``u``). State ``(c, v, u, s)``."""

    n_state = 4

    def __init__(self, decay_c: float = 0.5, theta_v: float = -0.172, theta_u: float = 0.529,
                 theta_r: float = 0.021, theta_s: float = 0.132, threshold: float = 0.5,
                 surrogate_width: float = 1.0, theta_u_sign: int = 1) -> None:
        super().__init__(threshold, surrogate_width)
        if theta_u_sign not in (1, -1):
            raise ValueError(f"dn_theta_u_sign must be 1 (the Proxy Target authors' code) or -1 "
                             f"(MDC-SAN's equation), got {theta_u_sign}")
        self.theta_u_sign = int(theta_u_sign)
        self.decay_c = float(decay_c)
        self.theta_v = float(theta_v)
        self.theta_u = float(theta_u)
        self.theta_r = float(theta_r)
        self.theta_s = float(theta_s)

    def step(self, i_t: Tensor, state: State) -> Tuple[Tensor, State]:
        """``i_t``: input current ``[batch, n]`` -> spikes ``[batch, n]``, new ``(c, v, u, s)``."""
        c, v, u, s = state
        c = self.decay_c * c + i_t
        v = v * (1.0 - s) + self.theta_r * s
        u = u + self.theta_s * s
        v_next = v + (v * v - v - u + c)
        u_next = u + (self.theta_v * v + (self.theta_u_sign * self.theta_u) * u)
        s = self.fire(v_next)
        return s, (c, v_next, u_next, s)


POPSAN_NEURONS: Dict[str, Type[PopSANNeuron]] = {}
POPSAN_NEURONS["lif"] = LIFNeuron
POPSAN_NEURONS["clif"] = CLIFNeuron
POPSAN_NEURONS["dn"] = DNNeuron
