"""JaxMARL's qmix_rnn settings for the side-by-side benchmarks follow our QMIX config."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

from jaxmarl_config import apply_sets, qmix_overrides  # noqa: E402
from utils.config import build_config  # noqa: E402


def test_overrides_take_our_sizes_and_the_edge_rule_of_the_jaxmarl_fidelity():
    ours = build_config("qmix", "smax")
    o = qmix_overrides(ours, "3m", 1000, 8, 3, 0.004)
    assert (o["HIDDEN_SIZE"], o["MIXER_EMBEDDING_DIM"], o["MIXER_HYPERNET_HIDDEN_DIM"]) == (64, 32, 64)
    assert o["ENV_KWARGS"]["walls_cause_death"] is True          # env_args null = the jaxmarl fidelity's rule
    apply_sets(o, ["LR=0.001", "MAP_NAME=8m", 'ENV_KWARGS={"walls_cause_death": false}'])
    assert o["LR"] == 0.001 and o["MAP_NAME"] == "8m"   # a map name starting with a digit stays a string
    assert o["ENV_KWARGS"] == {"walls_cause_death": False}
