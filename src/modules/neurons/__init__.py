"""Spiking neuron layers: ``REGISTRY[name](input_dim, hidden_dim, threshold=1.0, beta_init=0.5,
beta_learnable=None, surrogate_alpha=2.0, reset=None)``; ``None`` picks the neuron's default
(lif: fixed beta, hard reset; grsn: learnable beta, soft reset).

Use ``utils.registry.lookup(REGISTRY, name, what="neuron")`` for a clear error on a bad name.
Spike statistics: ``with energy.recording.SpikeRecorder(module) as rec: ...`` (the layer above).
"""
from .base import SpikingLayer
from .grsn import GRSNLayer
from .lif import LIFLayer
from .surrogate import SURROGATES, spike

REGISTRY = {}
REGISTRY["lif"] = LIFLayer
REGISTRY["grsn"] = GRSNLayer

__all__ = ["REGISTRY", "SpikingLayer", "LIFLayer", "GRSNLayer", "SURROGATES", "spike"]
