"""True resume: a run stopped at t (Ctrl-C) and resumed from its checkpoint to T logs exactly
the values of one uninterrupted run to T (same seed), for each of the three run loops."""
import os
import signal
from types import SimpleNamespace

import pytest

from utils.logging import Logger
from utils.seeding import set_seed

WALL_CLOCK = {"elapsed_s", "wall_time_s", "steps_per_sec"}


class StopAt(Logger):
    """A Logger that sends this process a SIGINT (as Ctrl-C would) once a stat is logged at
    ``t >= stop_t``: the run loop then saves at its next safe point and stops."""

    def __init__(self, stop_t=None):
        super().__init__()
        self.stop_t, self.sent = stop_t, False

    def log_stat(self, key, value, t):
        super().log_stat(key, value, t)
        if self.stop_t is not None and not self.sent and t >= self.stop_t:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def series(*loggers):
    """Every logged stat but the wall-clock ones, concatenated over ``loggers``."""
    out = {}
    for lg in loggers:
        for k, vals in lg.stats.items():
            if k not in WALL_CLOCK:
                out.setdefault(k, []).extend(vals)
    return out


def stop_and_resume(run, make_args, tmp_path, stop_t):
    """(straight run's series, stopped + resumed series, resumed run's first logged t)."""
    straight = StopAt()
    set_seed(1)  # as src/main.py does before every run
    run(make_args(tmp_path / "a", "straight"), straight)
    first = StopAt(stop_t)
    set_seed(1)
    with pytest.raises(KeyboardInterrupt):
        run(make_args(tmp_path / "b", "first"), first)
    model_dir = os.path.join(str(tmp_path / "b"), "models", "first")
    second = StopAt()
    set_seed(1)
    run(make_args(tmp_path / "b", "second", checkpoint_path=model_dir), second)
    resumed_t = min(t for vals in second.stats.values() for t, _ in vals)
    return series(straight), series(first, second), resumed_t


def assert_same(straight, resumed):
    assert sorted(straight) == sorted(resumed)
    for key in straight:
        assert resumed[key] == straight[key], key


# --------------------------------------------------------------------------------- MARL (SMAX)
@pytest.mark.parametrize("agent,runner,overlap", [("grsn", "parallel", False), ("grsn", "continuous", False),
                                                  ("rnn", "continuous", True)])
def test_marl_stop_and_resume_logs_the_same_values(request, tmp_path, agent, runner, overlap):
    """runner=continuous: the checkpoint also holds the episodes in flight (src/runners/continuous_runner.py);
    overlap_acting: they are the acting copy's, collected in a worker thread (src/run/marl_iteration.py)."""
    pytest.importorskip("jaxmarl")
    import run.marl as marl
    from utils.config import build_config

    cache = str(request.config.cache.mkdir("smax_jax_cache"))

    def make_args(root, token, **kw):
        cfg = build_config("qmix", "smax")
        cfg.update(device="cpu", agent=agent, runner=runner, rnn_hidden_dim=8, snn_hidden_dim=8, mixing_embed_dim=8,
                   hypernet_embed=8, batch_size_run=2, batch_size=4, buffer_size=8, target_update_interval=4,
                   epsilon_anneal_time=300, test_nepisode=2, test_interval=150, log_interval=100,
                   runner_log_interval=100, learner_log_interval=100, t_max=450, save_model=True, overlap_acting=overlap,
                   save_model_interval=10 ** 9, local_results_path=str(root), unique_token=token)
        cfg["env_args"]["jax_cache_dir"] = cache
        cfg.update(kw)
        return SimpleNamespace(**cfg)

    straight, resumed, resumed_t = stop_and_resume(marl.run_marl, make_args, tmp_path, stop_t=200)
    assert 200 <= resumed_t < 450  # the second run really continued mid-way
    assert_same(straight, resumed)


# --------------------------------------------------------------------------------- po_rl
@pytest.mark.parametrize("agent,key,learner", [("grsn", "Pendulum-P", "td3"), ("gru", "CartPole-V", "sacd")])
def test_po_rl_stop_and_resume_logs_the_same_values(tmp_path, agent, key, learner):
    from run.po_rl import run_po_rl
    from test_po_rl_smoke import po_args

    def make_args(root, token, **kw):
        return po_args(root, agent=agent, po_learner=learner, env_args={"key": key, "max_episode_steps": 30},
                       t_max=300, test_interval=90, log_interval=60, runner_log_interval=60,
                       learner_log_interval=60, save_model_interval=10 ** 9, unique_token=token,
                       po_updates_per_step=0.2, **kw)

    straight, resumed, resumed_t = stop_and_resume(run_po_rl, make_args, tmp_path, stop_t=120)
    assert 120 <= resumed_t < 300
    assert_same(straight, resumed)


# --------------------------------------------------------------------------------- td3_mujoco
@pytest.mark.parametrize("mode", ["ann", "proxy"])
def test_td3_mujoco_stop_and_resume_logs_the_same_values(tmp_path, mode):
    pytest.importorskip("mujoco")
    from run.td3_mujoco import run_td3_mujoco
    from test_td3_mujoco_smoke import make_args as td3_args

    def make_args(root, token, **kw):
        # Hopper: contacts, so the restored mid-episode physics must include the solver's warm start
        return td3_args(root, mode, env_args={"key": "Hopper-v4", "max_episode_steps": 40}, t_max=200,
                        start_steps=50, batch_size_transitions=16, test_interval=70, test_nepisode=1,
                        log_interval=30, save_model_interval=10 ** 9, unique_token=token,
                        popsan_hidden=[16], mujoco_actor_hidden=[16], mujoco_critic_hidden=[16],
                        proxy_hidden=[16], **kw)

    straight, resumed, resumed_t = stop_and_resume(run_td3_mujoco, make_args, tmp_path, stop_t=95)
    assert 95 <= resumed_t < 200
    assert_same(straight, resumed)
    assert "test_return_best" in straight


@pytest.mark.parametrize("how", ["loss", "weights"])
def test_a_diverged_run_never_becomes_the_newest_checkpoint(tmp_path, monkeypatch, how):
    """A non-finite loss (FloatingPointError) stops the run without a last save; non-finite
    weights are refused at every save. The newest checkpoint stays the last healthy one."""
    pytest.importorskip("mujoco")
    import torch
    from learners.td3_mujoco import TD3MujocoLearner
    from run.td3_mujoco import run_td3_mujoco
    from test_td3_mujoco_smoke import make_args as td3_args
    from utils.checkpoint import find_checkpoint

    original = TD3MujocoLearner.train_step

    def diverging(self, *a, **kw):
        stats = original(self, *a, **kw)
        if how == "loss" and self.n_updates >= 40:  # t_env = 50 start steps + 40 = 90
            raise FloatingPointError("the critic loss became nan")
        if how == "weights" and self.n_updates == 70:  # NaN weights at the periodic save at t_env 120;
            with torch.no_grad():                     # the next update's loss is NaN
                next(self.actor.parameters()).fill_(float("nan"))
        return stats

    monkeypatch.setattr(TD3MujocoLearner, "train_step", diverging)
    args = td3_args(tmp_path, "ann", t_max=150, start_steps=50, batch_size_transitions=16, test_interval=1000,
                    save_model_interval=60, unique_token="div", mujoco_actor_hidden=[8], mujoco_critic_hidden=[8])
    logger = StopAt()
    with pytest.raises(FloatingPointError):
        run_td3_mujoco(args, logger)
    model_dir = tmp_path / "models" / "div"
    assert sorted(os.listdir(model_dir)) == ["60"]
    assert find_checkpoint(str(model_dir))[1] == 60


# --------------------------------------------------------------------------------- lr overrides on resume
class Console:
    """A console stub keeping every line (info, warning, error)."""

    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)

    warning = error = info


def test_apply_config_lrs_sets_every_group_and_says_what_changed():
    import torch
    from utils.optim import apply_config_lrs

    w1, w2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [w1], "lr": 30.0}, {"params": [w2], "lr": 30.0}])
    same = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    lines = []
    changed = apply_config_lrs({"lr": (opt, 0.001), "critic_lr": (same, 0.5)}, lines.append)
    assert [g["lr"] for g in opt.param_groups] == [0.001, 0.001]
    assert changed == {"lr": ([30.0, 30.0], 0.001)}
    assert lines == ["learning rate changed from the checkpoint's to this run's config: lr 30 -> 0.001"]
    assert apply_config_lrs({"lr": (opt, 0.001)}, lines.append) == {} and len(lines) == 1


def _opt_lrs(step_dir, part):
    from utils.checkpoint import load_part
    state = load_part(os.path.join(step_dir, f"{part}.pt"))
    if part == "train_state":
        return {k: [g["lr"] for g in state[k]["param_groups"]] for k in ("actor_optim", "critic_optim")}
    return [g["lr"] for g in state["param_groups"]]


def _newest_step(model_dir):
    from utils.checkpoint import find_checkpoint
    return find_checkpoint(str(model_dir))[0]


def test_po_rl_lr_override_on_resume_takes_effect(tmp_path):
    """Issue 48, defect 1: the loaded Adam state used to bring back the checkpoint's rates."""
    from run.po_rl import run_po_rl
    from test_po_rl_smoke import po_args

    first = po_args(tmp_path, t_max=60, unique_token="first", actor_lr=0.03, critic_lr=0.03, po_updates_per_step=0.05,
                    env_args={"key": "CartPole-V", "max_episode_steps": 20}, po_learner="sacd")
    run_po_rl(first, Logger(console=Console()))
    logger = Logger(console=Console())
    second = po_args(tmp_path, t_max=100, unique_token="second", actor_lr=0.001, critic_lr=0.002,
                     po_updates_per_step=0.05, env_args={"key": "CartPole-V", "max_episode_steps": 20},
                     po_learner="sacd", checkpoint_path=str(tmp_path / "models" / "first"))
    run_po_rl(second, logger)
    step = _newest_step(tmp_path / "models" / "second")
    assert _opt_lrs(step, "actor_opt") == [0.001] and _opt_lrs(step, "critic_opt") == [0.002]
    assert "actor_lr 0.03 -> 0.001; critic_lr 0.03 -> 0.002" in "\n".join(logger.console.lines)


def test_td3_mujoco_lr_override_on_resume_takes_effect(tmp_path):
    pytest.importorskip("mujoco")
    from run.td3_mujoco import run_td3_mujoco
    from test_td3_mujoco_smoke import make_args as td3_args

    kw = dict(start_steps=20, batch_size_transitions=8, test_interval=1000, test_nepisode=1,
              mujoco_actor_hidden=[8], mujoco_critic_hidden=[8], env_args={"key": "InvertedPendulum-v4",
                                                                         "max_episode_steps": 20})
    run_td3_mujoco(td3_args(tmp_path, "ann", t_max=40, unique_token="first", actor_lr=0.05, critic_lr=0.05, **kw),
                   Logger(console=Console()))
    logger = Logger(console=Console())
    run_td3_mujoco(td3_args(tmp_path, "ann", t_max=60, unique_token="second", actor_lr=0.001, critic_lr=0.002,
                            checkpoint_path=str(tmp_path / "models" / "first"), **kw), logger)
    lrs = _opt_lrs(_newest_step(tmp_path / "models" / "second"), "train_state")
    assert lrs == {"actor_optim": [0.001], "critic_optim": [0.002]}
    assert "actor_lr 0.05 -> 0.001; critic_lr 0.05 -> 0.002" in "\n".join(logger.console.lines)


@pytest.mark.slow
def test_marl_lr_override_on_resume_takes_effect(request, tmp_path):
    pytest.importorskip("jaxmarl")
    import run.marl as marl
    from utils.config import build_config

    def make_args(token, **kw):
        cfg = build_config("qmix", "smax")
        cfg.update(device="cpu", rnn_hidden_dim=8, mixing_embed_dim=8, hypernet_embed=8, batch_size_run=2,
                   batch_size=2, buffer_size=8, test_nepisode=2, test_interval=10 ** 6, log_interval=10 ** 6,
                   runner_log_interval=10 ** 6, learner_log_interval=10 ** 6, save_model_interval=10 ** 9,
                   local_results_path=str(tmp_path), unique_token=token)
        cfg["env_args"]["jax_cache_dir"] = str(request.config.cache.mkdir("smax_jax_cache"))
        cfg.update(kw)
        return SimpleNamespace(**cfg)

    marl.run_marl(make_args("first", t_max=60, lr=30.0), Logger(console=Console()))
    logger = Logger(console=Console())
    marl.run_marl(make_args("second", t_max=120, lr=0.001, checkpoint_path=str(tmp_path / "models" / "first")),
                  logger)
    assert _opt_lrs(_newest_step(tmp_path / "models" / "second"), "opt") == [0.001]
    assert "lr 30 -> 0.001" in "\n".join(logger.console.lines)


# --------------------------------------------------------------------------------- extending a finished run
def extend_and_compare(run, make_args, tmp_path, t_first, t_max):
    """A run to ``t_first``, then resumed from its final checkpoint with ``t_max``, against a straight
    run to ``t_max``: every value equal, except the finished run's out-of-schedule end points (its
    t_max test and log), which a straight run does not make."""
    straight = StopAt()
    set_seed(1)
    run(make_args(tmp_path / "a", "straight", t_max=t_max), straight)
    first = StopAt()
    set_seed(1)
    run(make_args(tmp_path / "b", "first", t_max=t_first), first)
    end = max(t for vals in first.stats.values() for t, _ in vals)
    second = StopAt()
    set_seed(1)
    run(make_args(tmp_path / "b", "second", t_max=t_max,
                  checkpoint_path=os.path.join(str(tmp_path / "b"), "models", "first")), second)
    want, got = series(straight), series(first, second)
    extra = {k: [p for p in got.get(k, []) if p[0] == end and p not in want.get(k, [])] for k in got}
    got = {k: [p for p in v if p not in extra[k]] for k, v in got.items()}
    assert sum(len(v) for v in extra.values()) > 0                   # the finished run did test at its end
    assert min(t for vals in second.stats.values() for t, _ in vals) > end   # the second part really resumed
    assert_same(want, {k: v for k, v in got.items() if v})


@pytest.mark.parametrize("agent,key,learner", [("gru", "CartPole-V", "sacd"), ("grsn", "Pendulum-P", "td3")])
def test_po_rl_extending_a_finished_run_equals_a_straight_run(tmp_path, agent, key, learner):
    """Issue 48: the end-of-run test drew from the test env's stream and moved the test schedule."""
    from run.po_rl import run_po_rl
    from test_po_rl_smoke import po_args

    def make_args(root, token, **kw):
        return po_args(root, agent=agent, po_learner=learner, env_args={"key": key, "max_episode_steps": 30},
                       test_interval=90, log_interval=60, runner_log_interval=60, learner_log_interval=60,
                       save_model_interval=10 ** 9, unique_token=token, po_updates_per_step=0.2, **kw)

    extend_and_compare(run_po_rl, make_args, tmp_path, t_first=130, t_max=300)


def test_td3_mujoco_extending_a_finished_run_equals_a_straight_run(tmp_path):
    pytest.importorskip("mujoco")
    from run.td3_mujoco import run_td3_mujoco
    from test_td3_mujoco_smoke import make_args as td3_args

    def make_args(root, token, **kw):
        return td3_args(root, "proxy", env_args={"key": "Hopper-v4", "max_episode_steps": 40}, start_steps=50,
                        batch_size_transitions=16, test_interval=70, test_nepisode=1, log_interval=30,
                        save_model_interval=10 ** 9, unique_token=token, popsan_hidden=[16],
                        mujoco_actor_hidden=[16], mujoco_critic_hidden=[16], proxy_hidden=[16], **kw)

    extend_and_compare(run_td3_mujoco, make_args, tmp_path, t_first=110, t_max=200)


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["parallel", "continuous"])
def test_marl_extending_a_finished_run_equals_a_straight_run(request, tmp_path, runner):
    """Issue 48: MARL's end-of-run test played on the training envs (parallel runner), so the extended run
    trained on other episodes than a straight one."""
    pytest.importorskip("jaxmarl")
    import run.marl as marl
    from utils.config import build_config

    cache = str(request.config.cache.mkdir("smax_jax_cache"))

    def make_args(root, token, **kw):
        cfg = build_config("qmix", "smax")
        cfg.update(device="cpu", agent="rnn", runner=runner, rnn_hidden_dim=8, mixing_embed_dim=8, hypernet_embed=8,
                   batch_size_run=2, batch_size=4, buffer_size=8, target_update_interval=4, epsilon_anneal_time=300,
                   test_nepisode=2, test_interval=150, log_interval=100, runner_log_interval=100,
                   learner_log_interval=100, save_model=True, save_model_interval=10 ** 9,
                   local_results_path=str(root), unique_token=token)
        cfg["env_args"]["jax_cache_dir"] = cache
        cfg.update(kw)
        return SimpleNamespace(**cfg)

    extend_and_compare(marl.run_marl, make_args, tmp_path, t_first=220, t_max=450)


def _training_series(logger):
    return {k: v for k, v in series(logger).items() if not k.startswith("test_") and k != "spike_rate_mean"}


@pytest.mark.parametrize("loop", ["po_rl", "td3_mujoco"])
def test_the_test_schedule_does_not_change_training(tmp_path, loop):
    """Issue 48: tests run on their own envs and random streams, so another test_interval trains the same
    (every training stat equal). MARL's parallel runner still tests on its training envs (not covered)."""
    if loop == "po_rl":
        from run.po_rl import run_po_rl as run
        from test_po_rl_smoke import po_args

        def make_args(root, interval):
            return po_args(root, agent="gru", po_learner="sacd", env_args={"key": "CartPole-V", "max_episode_steps": 30},
                           t_max=200, test_interval=interval, log_interval=60, runner_log_interval=60,
                           learner_log_interval=60, save_model=False, unique_token="x", po_updates_per_step=0.2)
    else:
        pytest.importorskip("mujoco")
        from run.td3_mujoco import run_td3_mujoco as run
        from test_td3_mujoco_smoke import make_args as td3_args

        def make_args(root, interval):
            return td3_args(root, "snn", env_args={"key": "Hopper-v4", "max_episode_steps": 40}, t_max=150,
                            start_steps=50, batch_size_transitions=16, test_interval=interval, test_nepisode=1,
                            log_interval=30, save_model=False, unique_token="x", popsan_hidden=[16],
                            mujoco_critic_hidden=[16])
    loggers = []
    for interval in (37, 1000):
        logger = StopAt()
        set_seed(1)
        run(make_args(tmp_path / str(interval), interval), logger)
        loggers.append(logger)
    rare, often = _training_series(loggers[1]), _training_series(loggers[0])
    assert len(series(loggers[0])["test_return_mean"]) > len(series(loggers[1])["test_return_mean"]) + 2
    assert_same(rare, often)
