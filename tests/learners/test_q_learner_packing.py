"""learner_packing=packed computes the same loss, statistics and gradients as padded (float64).

The batch mixes episode lengths (one empty, one cut by the time limit without a terminal flag,
one filling the whole buffer) and unavailable actions, so the double-Q argmax, the bootstrap
from the last observation slot and the TD(lambda) chain all see ragged episodes.
"""
import copy
from types import SimpleNamespace

import pytest
import torch

from components.episode_buffer import EpisodeBatch
from components.packing import Packing
from controllers.basic_controller import BasicMAC
from learners.q_learner import QLearner
from utils.logging import Logger

D = torch.float64
INFO = {"n_agents": 3, "n_actions": 4, "obs_shape": 5, "state_shape": 6, "episode_limit": 6}
LENGTHS = [6, 2, 4, 1, 6, 3]          # transitions per episode (max_t = 6)
TIMEOUT = {4}                         # episodes that end without a terminal flag


def _args(**kw):
    base = dict(agent="rnn", rnn_hidden_dim=8, snn_hidden_dim=8, snn_threshold=0.3, snn_beta_init=0.5,
                snn_beta_learnable=None, surrogate_alpha=2.0, snn_reset=None, tap=True, snn_T=3,
                obs_agent_id=True, obs_last_action=True, action_selector="epsilon_greedy",
                epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_time=100, n_actions=4, mixer="qmix",
                mixing_embed_dim=4, hypernet_layers=2, hypernet_embed=8, lr=0.01, optim_eps=1e-5,
                grad_norm_clip=10, gamma=0.9, td_lambda=0.6, double_q=True, target_update_interval=10 ** 6,
                learner_log_interval=10 ** 9, mac_unroll="sequence", learner_packing="packed")
    base.update(kw)
    return SimpleNamespace(**base)


def _batch():
    g = torch.Generator().manual_seed(3)
    b = EpisodeBatch.zeros(len(LENGTHS), max(LENGTHS), 3, 5, 6, 4).map(
        lambda v: v.to(D) if v.is_floating_point() else v)
    b.obs.copy_(torch.randn(b.obs.shape, generator=g, dtype=D) * 2)
    b.state.copy_(torch.randn(b.state.shape, generator=g, dtype=D))
    b.avail_actions.copy_((torch.rand(b.avail_actions.shape, generator=g) < 0.7).to(torch.uint8))
    b.avail_actions[..., 0] = 1                                    # at least one action available
    b.actions.copy_(torch.randint(0, 4, b.actions.shape, generator=g))
    b.reward.copy_(torch.rand(b.reward.shape, generator=g, dtype=D))
    for i, n in enumerate(LENGTHS):
        b.filled[i, :n] = 1
        b.reward[i, n:] = 0
        if i not in TIMEOUT:
            b.terminated[i, n - 1] = 1
    return b


def _pair(**kw):
    """A padded and a packed learner with identical float64 weights whose targets differ from them."""
    torch.manual_seed(0)
    args = _args(**kw)
    pad = QLearner(BasicMAC(INFO, args), INFO, SimpleNamespace(**dict(vars(args), learner_packing="padded")), Logger())
    pad.mac.agent.to(D)
    pad.mixer.to(D) if pad.mixer is not None else None
    with torch.no_grad():
        for p in pad.params:
            p.mul_(2.0)                                            # make spiking agents fire
    pad.target_mac, pad.target_mixer = copy.deepcopy(pad.mac), copy.deepcopy(pad.mixer)
    with torch.no_grad():
        for p in pad.params:
            p.add_(0.05 * torch.randn_like(p))                     # online != target
    packed = QLearner(copy.deepcopy(pad.mac), INFO, args, Logger())
    packed.mixer = copy.deepcopy(pad.mixer)
    packed.target_mac, packed.target_mixer = copy.deepcopy(pad.target_mac), copy.deepcopy(pad.target_mixer)
    for lr in (pad, packed):
        lr.params = list(lr.mac.parameters()) + (list(lr.mixer.parameters()) if lr.mixer else [])
        lr.optimiser = torch.optim.Adam(lr.params, lr=args.lr, eps=args.optim_eps)
    return pad, packed


CASES = [dict(agent="rnn"), dict(agent="rnn", rnn_fused_gru=False), dict(agent="grsn"), dict(agent="lif"), dict(agent="grsn", tap=False),
         dict(agent="rnn", mac_unroll="stepwise"), dict(agent="lif", mac_unroll="stepwise"),
         dict(agent="rnn", mixer="vdn", double_q=False), dict(agent="grsn", mixer=None)]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_packed_equals_padded_loss_stats_and_grads(kw):
    pad, packed = _pair(**kw)
    batch = _batch()
    s_pad = pad.train(batch, t_env=0, episode=0)
    s_packed = packed.train(batch, t_env=0, episode=0)
    assert s_pad["loss"] > 0
    for key in s_pad:
        assert s_packed[key] == pytest.approx(s_pad[key], rel=1e-10, abs=1e-12), key
    grads = [(p.grad, q.grad) for p, q in zip(pad.params, packed.params)]
    assert any(float(g.abs().max()) > 1e-6 for g, _ in grads)        # the test sees real gradients
    for g_pad, g_packed in grads:
        torch.testing.assert_close(g_packed, g_pad, rtol=1e-10, atol=1e-12)
    for p, q in zip(pad.params, packed.params):                     # and the same Adam step
        torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("agent", ["rnn", "grsn"])
def test_packed_equals_padded_on_full_length_episodes(agent, monkeypatch):
    """Every episode fills the buffer (the packing's no-padding shortcut): same loss, grads, step."""
    import sys
    mod = sys.modules[__name__]
    monkeypatch.setattr(mod, "LENGTHS", [6] * 4)
    monkeypatch.setattr(mod, "TIMEOUT", {1})
    pad, packed = _pair(agent=agent)
    batch = _batch()
    assert Packing.from_mask(batch.mask(), extra=1).full
    s_pad, s_packed = pad.train(batch, t_env=0, episode=0), packed.train(batch, t_env=0, episode=0)
    assert s_packed["loss"] == pytest.approx(s_pad["loss"], rel=1e-10)
    for p, q in zip(pad.params, packed.params):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-12)


def test_spiking_case_really_fires():
    pad, _ = _pair(agent="grsn")
    from energy.recording import SpikeRecorder
    with torch.no_grad(), SpikeRecorder(pad.mac.agent, membrane_samples=0) as rec:
        pad.mac.unroll(_batch())
    assert 0.02 < rec.stats()["spiking"]["firing_rate"] < 0.98


def test_unroll_packed_equals_unroll_on_real_slots():
    pad, _ = _pair(agent="grsn")
    batch = _batch()
    slots = Packing.from_mask(batch.mask(), extra=1)
    with torch.no_grad():
        full = pad.mac.unroll(batch)
        rows = pad.mac.unroll_packed(batch, slots)
    assert rows.shape == (sum(LENGTHS) + len(LENGTHS), 3, 4)
    torch.testing.assert_close(rows, slots.pack(full), rtol=1e-12, atol=1e-12)


def test_auto_packing_is_packed_on_cpu_and_padded_on_cuda():
    args = _args(learner_packing="auto", device="cpu")
    assert QLearner(BasicMAC(INFO, args), INFO, args, None).packing == "packed"
    args = _args(learner_packing="auto", device="cuda:0")
    assert QLearner(BasicMAC(INFO, args), INFO, args, None).packing == "padded"


def test_unknown_packing_mode_is_a_clear_error():
    with pytest.raises(ValueError, match=r"learner_packing must be one of \['auto', 'packed', 'padded'\]"):
        QLearner(BasicMAC(INFO, _args()), INFO, _args(learner_packing="ragged"), None)


def test_learner_threads_apply_during_the_update_only():
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    _, packed = _pair(learner_threads=want)
    seen, unroll = [], packed.mac.unroll_packed
    packed.mac.unroll_packed = lambda *a: (seen.append(torch.get_num_threads()), unroll(*a))[1]
    packed.train(_batch(), t_env=0, episode=0)
    assert seen == [want] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match=r"learner_threads must be >= 0"):
        QLearner(BasicMAC(INFO, _args()), INFO, _args(learner_threads=-1), None)


@pytest.mark.parametrize("flag", [True, False])
def test_learner_keep_heap_switches_the_heap_setting(flag, monkeypatch):
    import learners.q_learner as ql
    seen = []
    monkeypatch.setattr(ql, "keep_freed_memory", lambda: seen.append(1))
    QLearner(BasicMAC(INFO, _args()), INFO, _args(learner_keep_heap=flag), None)
    assert seen == ([1] if flag else [])
