"""Guards shared by both PO learners: the wrong action space is refused with the other
algorithm named, and a non-finite loss stops training before any weight changes."""
import pytest
import torch

from learners.sacd_po import SACDPOLearner
from learners.td3_po import TD3POLearner
from modules.agents.po_actor import POActor
from modules.critics.po_critic import POTwinCritic
from po_learner_setup import (continuous_windows, discrete_windows, sacd_args, sacd_learner, td3_args,
                              td3_learner)

# learner class, its args, the action space it refuses (discrete?), the config the error names
WRONG_SPACE = [(TD3POLearner, td3_args, True, "sacd"), (SACDPOLearner, sacd_args, False, "td3")]
# learner factory, its window batch, the agent, the loss name the error starts with
NON_FINITE = [(td3_learner, continuous_windows, "lif", "TD3"), (sacd_learner, discrete_windows, "gru", "SAC-discrete")]


@pytest.mark.parametrize("learner_cls, make_args, discrete, other_config", WRONG_SPACE)
def test_the_wrong_action_space_is_refused_with_the_other_config_named(learner_cls, make_args, discrete,
                                                                       other_config):
    args = make_args("mlp")
    with pytest.raises(ValueError, match=f"--config={other_config}"):
        learner_cls(POActor(2, 2, discrete, args), POTwinCritic(2, 2, discrete, args), args)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("make_learner, make_batch, agent, name", NON_FINITE)
def test_a_non_finite_reward_stops_training_and_leaves_the_critic_unchanged(make_learner, make_batch, agent,
                                                                           name, bad):
    learner = make_learner(agent)
    b = make_batch()
    b["rew"][1, 2, 0] = bad
    before = [p.detach().clone() for p in learner.critic.parameters()]
    with pytest.raises(FloatingPointError, match=rf"{name} critic_loss at update 0 became (nan|inf)\. Lower actor_lr"):
        learner.train(b)
    assert all(torch.equal(p, q) for p, q in zip(before, learner.critic.parameters()))
