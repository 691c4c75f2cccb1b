"""Small actor/critic settings shared by the PO learner tests (TD3 and SAC-discrete)."""
from types import SimpleNamespace

# tiny networks: embedders 8/4/4 -> core 16 -> head [16]
PO_NET_ARGS = dict(po_obs_embed=8, po_action_embed=4, po_reward_embed=4, po_hidden_dim=16,
                   po_head_layers=[16], tap=True, snn_T=4, tau=0.005, actor_lr=1e-3, critic_lr=1e-3)


def po_args(agent: str, algo_args: dict, **overrides) -> SimpleNamespace:
    """Args for a PO learner: the shared network settings, then ``algo_args``, then ``overrides``."""
    return SimpleNamespace(**{"agent": agent, **PO_NET_ARGS, **algo_args, **overrides})
