"""The MARL run loop (pymarl semantics): collect episodes, train, test, log, checkpoint."""
from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Optional

import numpy as np

from components.episode_buffer import ReplayBuffer
from controllers import REGISTRY as MAC_REGISTRY
from learners import REGISTRY as LEARNER_REGISTRY
from runners import REGISTRY as RUNNER_REGISTRY
from run.marl_iteration import TrainingIteration
from utils.checkpoint import Checkpointer, find_checkpoint, loop_part, restore_buffer, restore_loop, restore_plain
from utils.seeding import global_rng_state, set_global_rng_state
from utils.logging import time_str
from utils.optim import apply_config_lrs
from utils.registry import lookup


def run_test_episodes(args: Any, runner: Any, logger: Any) -> Optional[float]:
    """Run ``test_nepisode`` greedy episodes and log ``test_*`` stats (and, for spiking
    agents, ``spike_rate_mean``: the firing rate over all spiking layers).

    Returns the test win rate."""
    from modules.neurons.base import SpikingLayer
    from energy.recording import SpikeRecorder

    n_runs = max(1, math.ceil(args.test_nepisode / runner.n_envs))
    agent = runner.mac.agent
    recorder = SpikeRecorder(agent) if any(isinstance(m, SpikingLayer) for m in agent.modules()) else None
    with recorder or contextlib.nullcontext():
        for _ in range(n_runs):
            runner.run(test_mode=True)
    win_rate = runner.log_stats(runner.test_stats, "test_")
    if recorder is not None:
        stats = recorder.stats().values()
        spikes = sum(s["spikes"] for s in stats)
        steps = sum(s["neuron_steps"] for s in stats)
        logger.log_stat("spike_rate_mean", spikes / max(steps, 1), runner.t_env)
    return win_rate


def build_marl(args: Any, logger: Any):
    """Build runner, controller and learner; sets n_agents/n_actions/... on ``args``.

    Registry names are checked first, so a typo fails before the environment is built.
    """
    from components.action_selectors import REGISTRY as SELECTOR_REGISTRY
    from modules.agents import REGISTRY as AGENT_REGISTRY
    from modules.mixers import REGISTRY as MIXER_REGISTRY

    lookup(AGENT_REGISTRY, args.agent, "agent")
    lookup(SELECTOR_REGISTRY, args.action_selector, "action_selector")
    lookup(MAC_REGISTRY, args.mac, "mac")
    lookup(LEARNER_REGISTRY, args.learner, "learner")
    if args.mixer:
        lookup(MIXER_REGISTRY, args.mixer, "mixer")
    runner = lookup(RUNNER_REGISTRY, args.runner, "runner")(args, logger)
    env_info = runner.env_info
    args.n_agents, args.n_actions = env_info["n_agents"], env_info["n_actions"]
    args.state_shape, args.obs_shape = env_info["state_shape"], env_info["obs_shape"]
    args.episode_limit = env_info["episode_limit"]
    mac = lookup(MAC_REGISTRY, args.mac, "mac")(env_info, args)
    runner.setup(mac)
    learner = lookup(LEARNER_REGISTRY, args.learner, "learner")(mac, env_info, args, logger)
    learner.to(args.device)
    return runner, mac, learner


def run_marl(args: Any, logger: Any) -> None:
    """Train (or with ``evaluate=True`` only test) a MARL agent as configured by ``args``.

    With ``checkpoint_path`` and ``evaluate=False`` the run resumes exactly where the checkpoint
    was saved (see ``train``)."""
    runner, mac, learner = build_marl(args, logger)
    try:
        step_dir = None
        if args.checkpoint_path:
            step_dir, t_loaded = find_checkpoint(args.checkpoint_path, args.load_step, warn=logger.console.warning)
            logger.console.info(f"loading checkpoint {step_dir}")
            if args.evaluate:
                learner.load(step_dir)
                runner.t_env = t_loaded
        elif args.evaluate and not args.energy:
            logger.console.warning("evaluate=True without checkpoint_path: testing an untrained network")
        if args.evaluate:
            if args.energy:
                from energy.evaluate import report_energy
                report_energy("marl", args, logger, runner=runner, learner=learner)
            run_test_episodes(args, runner, logger)
            logger.print_recent_stats()
            return
        train(args, logger, runner, learner, resume_from=step_dir)
    finally:
        runner.close()


def aside(runner: Any, test: Any) -> Any:
    """Run ``test()`` (the end-of-run test, which the test schedule did not ask for) and put the
    runner's state (envs, pending stats) and the global RNG states back as they were, so the
    checkpoint saved after it is the one a longer run would have had at that step: extending a
    finished run with a larger ``t_max`` trains as a straight run does. Envs that cannot save
    their state (sc2) are tested in place."""
    state = runner.state_dict()
    if state.get("env") is None:
        return test()
    rng = global_rng_state()
    result = test()
    runner.load_state_dict(state)
    set_global_rng_state(rng)
    return result


def train(args: Any, logger: Any, runner: Any, learner: Any, resume_from: Optional[str] = None) -> None:
    """The training loop proper.

    Checkpoints (``utils.checkpoint.Checkpointer``) are taken at the end of a loop iteration,
    the one point where the learner, runner (t_env, envs), replay buffer, loop timers and RNG
    states agree; a Ctrl-C / SIGTERM stops the run there too. ``resume_from`` (a step folder)
    restores all of it, so the resumed run logs what an uninterrupted one would have.
    """
    info = runner.env_info
    buffer = ReplayBuffer(args.buffer_size, runner.episode_limit, info["n_agents"], info["obs_shape"],
                          info["state_shape"], info["n_actions"], rng=np.random.default_rng(args.seed))
    ckpt = Checkpointer(args, logger.console, resume_from)
    # built before the runner's state is restored; closing it stops its acting thread
    with contextlib.closing(TrainingIteration(args, runner, buffer, learner, learner.mac)) as step:
        loop = {"episode": 0, "last_test_t": -args.test_interval - 1, "last_log_t": 0, "last_save_t": runner.t_env,
                "elapsed_s": 0.0}
        if resume_from is not None:
            learner.load(resume_from, resume=True)
            apply_config_lrs({"lr": (learner.optimiser, args.lr)}, logger.console.info)  # an lr= override counts
            runner.load_state_dict(restore_plain(resume_from, "runner"))
            loop.update(restore_loop(resume_from, logger))
            set_global_rng_state(restore_plain(resume_from, "rng"))
            if not restore_buffer(resume_from, "buffer", buffer, args.device):
                logger.console.warning("the checkpoint holds no replay buffer (save_buffer=False): training restarts "
                                       f"once {args.batch_size} new episodes are collected")
            logger.console.info(f"resumed at t_env {runner.t_env}, episode {loop['episode']}, "
                                f"{len(buffer)} episodes in the replay buffer")
            if runner.t_env > args.t_max:
                logger.console.info(f"the checkpoint is at t_env {runner.t_env} > t_max={args.t_max}: nothing left to "
                                    f"train (give a larger t_max to continue)")
                return
        start = time.time() - float(loop["elapsed_s"])

        def save(last: bool) -> None:
            loop["elapsed_s"] = time.time() - start
            ckpt.save(runner.t_env, learner.checkpoint_parts(),
                      {"runner": runner.state_dict(), "loop": loop_part(loop, logger), "rng": global_rng_state()},
                      {"buffer": buffer}, last)

        def test_now() -> Optional[float]:
            """Test episodes plus the wall time so far (``elapsed_s``); returns the test win rate."""
            step.sync_acting()
            win = run_test_episodes(args, runner, logger)
            logger.log_stat("elapsed_s", time.time() - start, runner.t_env)
            logger.print_test(runner.t_env)
            return win

        stop_at = float(args.stop_at_test_win_rate)
        logger.console.info(f"training for {args.t_max} env steps"
                            + (f" or until the test win rate reaches {stop_at}" if stop_at > 0 else ""))
        with ckpt.guard(save, logger.console.warning) as guard:   # saves the last checkpoint on the way out
            while runner.t_env <= args.t_max:
                guard.poll(runner.t_env)
                loop["episode"] = step(loop["episode"])

                if (runner.t_env - loop["last_test_t"]) / args.test_interval >= 1.0:
                    loop["last_test_t"] = runner.t_env
                    win_rate = test_now()
                    if stop_at > 0 and win_rate is not None and win_rate >= stop_at:
                        logger.console.info(f"test win rate {win_rate:.3f} >= stop_at_test_win_rate={stop_at}: "
                                            f"stopping at t_env {runner.t_env}")
                        break

                if runner.t_env - loop["last_log_t"] >= args.log_interval:
                    logger.log_stat("episode", loop["episode"], runner.t_env)
                    logger.print_progress(runner.t_env, args.t_max)
                    loop["last_log_t"] = runner.t_env

                if ckpt.due(runner.t_env, loop["last_save_t"]):
                    loop["last_save_t"] = runner.t_env
                    save(last=False)
            else:
                logger.console.info(f"final test at t_env {runner.t_env}")
                aside(runner, test_now)
        logger.log_stat("wall_time_s", time.time() - start, runner.t_env)
        logger.console.info(f"finished training at t_env {runner.t_env} in {time_str(time.time() - start)}")
