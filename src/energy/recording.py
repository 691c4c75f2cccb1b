"""Spike recording for firing-rate logging and energy estimation (hooks on ``modules.neurons`` layers).

Neurons never return statistics through ``forward``. Instead::

    with SpikeRecorder(agent, membrane_samples=50_000) as rec:
        agent.forward_seq(obs, agent.init_hidden(n))
    rec.stats()["spiking"]   # {'spikes': ..., 'neuron_steps': ..., 'firing_rate': ..., 'decisions': ...}
    rec.membrane("spiking")  # 1-D CPU tensor of sampled pre-reset membrane potentials u_t

While no recorder is attached a layer pays one empty-list check per call. Counts accumulate
as device tensors (no GPU sync) until ``stats()`` is read.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from modules.neurons.base import SpikingLayer


class LayerRecord:
    """Accumulated statistics of one spiking layer."""

    def __init__(self, layer: SpikingLayer, membrane_samples: int, per_call: int) -> None:
        self.layer = layer
        self.membrane_samples = int(membrane_samples)
        self.per_call = int(per_call)
        self.reset()

    def reset(self) -> None:
        self._spikes: Optional[Tensor] = None
        self.neuron_steps = 0
        self._steps_by_window: Dict[int, int] = {}  # steps_per_decision -> neuron steps
        self._membrane: List[Tensor] = []
        self._n_membrane = 0

    def add(self, spikes: Tensor, membrane: Tensor, steps_per_decision: int) -> None:
        """Add spikes / membrane ``[..., batch, hidden]`` of one ``step``/``integrate`` call."""
        s = spikes.detach().sum()
        self._spikes = s if self._spikes is None else self._spikes + s
        n = spikes.numel()
        self.neuron_steps += n
        spd = max(int(steps_per_decision), 1)
        self._steps_by_window[spd] = self._steps_by_window.get(spd, 0) + n
        left = self.membrane_samples - self._n_membrane
        if left > 0:
            flat = membrane.detach().reshape(-1)
            take = min(left, self.per_call, flat.numel())
            stride = max(flat.numel() // take, 1)
            sample = flat[::stride][:take].to("cpu", copy=True)
            self._membrane.append(sample)
            self._n_membrane += sample.numel()

    @property
    def decisions(self) -> int:
        """Decisions (batch rows x env steps) seen; a no-TAP decision spans several neuron steps."""
        h = self.layer.hidden_dim
        return sum(n // (h * spd) for spd, n in self._steps_by_window.items())

    @property
    def spikes(self) -> float:
        return 0.0 if self._spikes is None else float(self._spikes.item())

    def summary(self) -> Dict[str, float]:
        spikes = self.spikes
        return {
            "spikes": spikes,
            "neuron_steps": self.neuron_steps,
            "firing_rate": spikes / self.neuron_steps if self.neuron_steps else 0.0,
            "decisions": self.decisions,
            "spikes_per_decision": spikes / self.decisions if self.decisions else 0.0,
            "hidden_dim": self.layer.hidden_dim,
            "input_dim": self.layer.input_dim,
            "steps_per_decision": self.layer.steps_per_decision,
        }

    def membrane(self) -> Tensor:
        if not self._membrane:
            return torch.empty(0)
        return torch.cat(self._membrane)


class SpikeRecorder:
    """Record spikes of every ``SpikingLayer`` inside ``module`` while active.

    ``membrane_samples``: how many membrane values ``u_t`` to keep per layer (0 = none);
    ``membrane_per_call``: at most this many (evenly strided) from any single call.
    Use as a context manager, or ``start()`` / ``stop()``. Several recorders may be active.
    Layer names are those of ``module.named_modules()`` (``"self"`` when module is a layer).
    """

    def __init__(self, module: nn.Module, membrane_samples: int = 0,
                 membrane_per_call: int = 4096) -> None:
        self.records: Dict[str, LayerRecord] = {}
        for name, sub in module.named_modules():
            if isinstance(sub, SpikingLayer):
                self.records[name or "self"] = LayerRecord(sub, membrane_samples, membrane_per_call)
        if not self.records:
            raise ValueError(f"SpikeRecorder: {type(module).__name__} contains no spiking layer "
                             f"(modules.neurons.SpikingLayer); nothing to record")
        self.active = False

    def start(self) -> "SpikeRecorder":
        if not self.active:
            for rec in self.records.values():
                rec.layer._recorders.append(rec)
            self.active = True
        return self

    def stop(self) -> None:
        if self.active:
            for rec in self.records.values():
                rec.layer._recorders.remove(rec)
            self.active = False

    def __enter__(self) -> "SpikeRecorder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget everything recorded so far (stays active if it was)."""
        for rec in self.records.values():
            rec.reset()

    def stats(self) -> Dict[str, Dict[str, float]]:
        """Per layer: spikes, neuron_steps, firing_rate, decisions, spikes_per_decision, dims."""
        return {name: rec.summary() for name, rec in self.records.items()}

    def membrane(self, name: str) -> Tensor:
        """Sampled pre-reset membrane potentials of layer ``name`` (1-D CPU tensor)."""
        if name not in self.records:
            raise KeyError(f"no spiking layer named '{name}'; recorded layers: {sorted(self.records)}")
        return self.records[name].membrane()
