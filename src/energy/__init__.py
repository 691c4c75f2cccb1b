"""Energy estimation: one package above ``modules`` (layers and conventions: docs/energy.md).

* ``counting``: MAC / AC counting per layer (``OpCounter``) and the memory traffic it implies;
* ``recording``: spike recording hooks on ``modules.neurons`` layers (``SpikeRecorder``);
* ``memory``: memory-aware energy and the firing rate at which a spiking agent breaks even;
* ``table``: Table-4-style rows and Markdown tables;
* ``evaluate``: the run-level evaluation; run loops call ``evaluate.report_energy``;
* ``checkpoints``: ``table_from_checkpoints``, energy rows of saved runs (builds them through
  the run loops' public builders, so it sits above ``run``; nothing in ``run`` imports it).

``utils``, ``components`` and ``modules`` never import this package (tests/energy/test_layering.py).
"""
