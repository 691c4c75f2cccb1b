"""PopSAN-style spiking actor (population encoder, spiking MLP, population decoder).

``POPSAN_NEURONS``: neuron dynamics by name ("lif" | "clif" | "dn").
"""
from modules.popsan.actor import SpikingActor, SpikingLayer, set_fused
from modules.popsan.decoder import PopulationDecoder
from modules.popsan.encoder import PopulationEncoder
from modules.popsan.neurons import POPSAN_NEURONS

__all__ = ["SpikingActor", "SpikingLayer", "set_fused", "PopulationDecoder", "PopulationEncoder", "POPSAN_NEURONS"]
