"""Agent networks (pymarl2 interface): ``REGISTRY[name](input_shape, args)``.

``init_hidden(n)``, ``forward(inputs[b, a, e], hidden) -> (q[b, a, n_actions], hidden)``,
``forward_seq(inputs[T, b, a, e], hidden) -> (q[T, b, a, n_actions], hidden)``.
Use ``utils.registry.lookup(REGISTRY, name, what="agent")`` for a clear error on a bad name.
"""
from .rnn_agent import RNNAgent
from .spiking_agent import GRSNAgent, LIFAgent, SpikingAgent

REGISTRY = {}
REGISTRY["rnn"] = RNNAgent
REGISTRY["lif"] = LIFAgent
REGISTRY["grsn"] = GRSNAgent

__all__ = ["REGISTRY", "RNNAgent", "SpikingAgent", "LIFAgent", "GRSNAgent"]
