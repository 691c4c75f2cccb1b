"""Run loop: TD3 (ANN / vanilla spiking / proxy target) on gymnasium MuJoCo tasks.

``run_td3_mujoco(args, logger)``: ``start_steps`` uniform-random steps, then the actor plus
Gaussian exploration noise (``expl_noise * max_action``); one ``train_step`` per environment step
once the replay holds ``batch_size_transitions`` transitions and ``t_env >= start_steps``; a
deterministic evaluation of the actor (the spiking actor in snn/proxy modes) over
``test_nepisode`` episodes from the same fixed start states every time (``_Tester``) at
``t_env = 0`` and every ``test_interval`` steps. In proxy mode every update also gets
``proxy_steps`` fresh replay batches for the proxy fit.

Logged stats: ``test_return_mean/std/max``, ``test_ep_length_mean``, ``test_return_best`` (the
best evaluation so far: the paper's "max average return"), ``test_return_last5_mean`` (mean of
the last 5 evaluations), ``return_mean``, ``ep_length_mean``, ``critic_loss``, ``actor_loss``,
``q_taken_mean``, ``target_mean``, ``proxy_loss``, ``proxy_loss_first``, ``target_shift``
(with ``target_shift_states`` > 0), ``test_firing_rate`` (snn/proxy), ``steps_per_sec``.
``evaluate=True energy=True`` also counts the actor's operations on the evaluation states
(``energy.evaluate.report_energy``).

Checkpoints (``save_model``): ``actor.pt`` (the deployable actor, nothing else),
``train_state.pt`` (critic, targets or proxy, optimisers, update count), ``loop.pt`` and ``rng.pt``
(counters, timers, the current episode, the tester's ``test_return_best`` and history, RNG and
env states), and with the
last checkpoint (end, Ctrl-C / SIGTERM; every one with ``save_buffer=True``) ``replay.pt``.
``checkpoint_path`` resumes training exactly (``train``); with ``evaluate=True`` only ``actor.pt``
is loaded and evaluated.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

from components.transition_replay import TransitionReplay
from learners.td3_mujoco import TD3MujocoLearner, resolve_mode
from utils.config import check_keys
from utils.optim import apply_config_lrs
from utils.checkpoint import (Checkpointer, find_checkpoint, load_checkpoint, loop_part, restore_buffer, restore_loop,
                              restore_plain)
from utils.seeding import (generator_state, global_rng_state, gym_env_rng_state, set_generator_state,
                           set_global_rng_state, set_gym_env_rng_state)


def _make_env(args: Any, seed: int):
    from envs import REGISTRY as ENV_REGISTRY
    from utils.registry import lookup

    return lookup(ENV_REGISTRY, "mujoco", what="env")(seed=seed, **dict(args.env_args))


# The keys this loop reads whose ranges default.yaml declares.
CHECKED_KEYS = ("t_max", "start_steps", "batch_size_transitions", "buffer_size_transitions", "test_interval",
                "test_nepisode", "log_interval")


def check_args(args: Any) -> str:
    """Validate the keys this loop needs; returns the learner mode ("ann" | "snn" | "proxy")."""
    if getattr(args, "env", "mujoco") != "mujoco":
        raise ValueError(f"the td3_mujoco loop (--config=td3/td3_snn/td3_proxy) runs only on "
                         f"--env-config=mujoco, got env='{args.env}'.")
    mode = resolve_mode(args.actor_type, bool(getattr(args, "proxy_target", False)))
    check_keys(args, CHECKED_KEYS)
    return mode


def evaluate(act: Callable[[np.ndarray], np.ndarray], envs: Sequence[Any], seeds: Sequence[int]
             ) -> Tuple[List[float], List[int], np.ndarray]:
    """One episode of the deterministic policy ``act`` in each of ``envs``, env i reset with
    ``seeds[i]`` (the same start states at every evaluation); the unfinished envs step together
    with one batched ``act(obs [n, obs_dim]) -> [n, act_dim]`` call per step.

    Returns (returns, lengths) per episode and every observation acted on, ``[steps, obs_dim]``.
    """
    if len(envs) != len(seeds):
        raise ValueError(f"evaluate: {len(envs)} envs but {len(seeds)} seeds")
    obs = [env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds)]
    returns, lengths = [0.0] * len(envs), [0] * len(envs)
    live = list(range(len(envs)))
    visited = []
    while live:
        batch = np.asarray([obs[i] for i in live], dtype=np.float32)
        visited.append(batch)
        actions = act(batch)
        still = []
        for j, i in enumerate(live):
            obs[i], rew, terminated, truncated, _ = envs[i].step(actions[j])
            returns[i] += float(rew)
            lengths[i] += 1
            if not (terminated or truncated):
                still.append(i)
        live = still
    states = np.concatenate(visited, 0) if visited else np.zeros((0, 0), dtype=np.float32)
    return returns, lengths, states


def _firing_rate(learner: TD3MujocoLearner, env: Any, seed: int, n_states: int = 64) -> float:
    """Mean firing rate of the spiking actor's layers on the states of one short rollout of its
    own env, reset with ``seed`` (the same start at every evaluation)."""
    obs, _ = env.reset(seed=int(seed))
    states = [obs]
    for _ in range(n_states - 1):
        obs, _, terminated, truncated, _ = env.step(learner.act(obs))
        if terminated or truncated:
            obs, _ = env.reset()
        states.append(obs)
    with torch.no_grad():
        o = torch.as_tensor(np.asarray(states), dtype=torch.float32, device=learner.device)
        _, rates = learner.actor.forward_with_rates(o)
    return float(torch.cat([r.flatten() for r in rates]).mean())


LAST_EVALS = 5  # test_return_last5_mean: the mean over this many latest evaluations


class _Tester:
    """Evaluations as the Proxy Target authors run them: ``test_nepisode`` episodes from fixed
    start states (env i reset with seed ``seed + 100 + i`` at every evaluation), the episodes
    batched through the actor. Tracks the best evaluation mean (the paper's "max average
    return", ``test_return_best``) and the mean of the last ``LAST_EVALS`` evaluations; both
    survive resume through ``state_dict``/``load_state_dict``. The firing-rate rollout of a
    spiking actor runs on its own env (seed ``seed + 100 + test_nepisode``)."""

    def __init__(self, args: Any, learner: TD3MujocoLearner, logger: Any) -> None:
        n = int(args.test_nepisode)
        if n < 1:
            raise ValueError(f"test_nepisode must be >= 1 for td3_mujoco evaluations, got {n}")
        base = int(args.seed) + 100
        self.seeds = [base + i for i in range(n)]
        self.envs = [_make_env(args, s) for s in self.seeds]
        self.rate_seed = base + n
        self.rate_env = _make_env(args, self.rate_seed) if learner.mode != "ann" else None
        self.args, self.learner, self.logger = args, learner, logger
        self.best = -float("inf")
        self.history: List[List[float]] = []     # [t_env, mean return] per evaluation
        self.last_states = np.zeros((0, 0), dtype=np.float32)

    def __call__(self, t_env: int) -> float:
        returns, lengths, self.last_states = evaluate(self.learner.act, self.envs, self.seeds)
        mean = float(np.mean(returns))
        self.best = max(self.best, mean)
        self.history.append([int(t_env), mean])
        log = self.logger.log_stat
        log("test_return_mean", mean, t_env)
        log("test_return_std", float(np.std(returns)), t_env)
        log("test_return_max", float(np.max(returns)), t_env)
        log("test_ep_length_mean", float(np.mean(lengths)), t_env)
        log("test_return_last5_mean", float(np.mean([m for _, m in self.history[-LAST_EVALS:]])), t_env)
        if self.rate_env is not None:
            log("test_firing_rate", _firing_rate(self.learner, self.rate_env, self.rate_seed), t_env)
        log("test_return_best", self.best, t_env)
        self.logger.print_test(t_env)
        return mean

    def state_dict(self) -> Dict[str, Any]:
        """Best-so-far and the evaluation history (JSON-friendly), for resume."""
        return {"best": self.best, "history": [list(h) for h in self.history]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.history = [[int(t), float(m)] for t, m in state["history"]]

    def close(self) -> None:
        for env in self.envs + ([self.rate_env] if self.rate_env is not None else []):
            env.close()


def env_state(env: Any) -> Dict[str, Any]:
    """Everything a gymnasium MuJoCo env's next steps depend on, mid-episode included: every
    fixed-size array of its ``mjData`` (positions, velocities, warm start, derived quantities the
    step reads), the sim time, the ``TimeLimit`` step count and the env/action-space RNGs."""
    data = env.unwrapped.data
    arrays = {}
    for name in dir(data):
        if name.startswith("_"):
            continue
        try:
            value = getattr(data, name)
        except Exception:  # noqa: BLE001 - some mjData properties are not readable in every build
            continue
        if isinstance(value, np.ndarray) and value.flags.writeable and value.size:
            arrays[name] = torch.from_numpy(value.copy())
    elapsed, wrapper = None, env
    while hasattr(wrapper, "env"):
        if hasattr(wrapper, "_elapsed_steps"):
            elapsed = wrapper._elapsed_steps
        wrapper = wrapper.env
    return {"mjdata": arrays, "time": float(data.time), "elapsed_steps": elapsed, "rng": gym_env_rng_state(env)}


def set_env_state(env: Any, state: Dict[str, Any]) -> None:
    """Restore ``env_state``: the env continues its episode exactly as the saved one would have.
    Arrays whose size depends on the current contacts are recomputed by the next step."""
    data = env.unwrapped.data
    for name, value in state["mjdata"].items():
        target = getattr(data, name)
        if target.shape == tuple(value.shape):
            target[...] = value.numpy()
    data.time = state["time"]
    wrapper = env
    while hasattr(wrapper, "env"):
        if hasattr(wrapper, "_elapsed_steps"):
            wrapper._elapsed_steps = state["elapsed_steps"]
        wrapper = wrapper.env
    set_gym_env_rng_state(env, state["rng"])


def run_td3_mujoco(args: Any, logger: Any) -> None:
    """Train (or with ``evaluate=True`` evaluate) TD3 on ``env_args.key``; see the module doc."""
    mode = check_args(args)
    env = _make_env(args, int(args.seed))
    obs_dim = int(np.prod(env.observation_space.shape))
    act_dim = int(np.prod(env.action_space.shape))
    max_action = env.action_space.high.astype(np.float32)
    learner = TD3MujocoLearner(obs_dim, act_dim, max_action, args)
    n_params = sum(p.numel() for p in learner.actor.parameters())
    logger.console.info(f"td3_mujoco: {args.env_args['key']} mode={mode}"
                        + (f" neuron={args.actor_neuron}" if mode != "ann" else "")
                        + f" | obs {obs_dim} act {act_dim} | actor params {n_params}")

    step_dir, t_loaded = None, 0
    if getattr(args, "checkpoint_path", ""):
        step_dir, t_loaded = find_checkpoint(args.checkpoint_path, int(getattr(args, "load_step", 0)),
                                             warn=logger.console.warning)
        parts = dict(learner.deploy_parts())
        if not args.evaluate:
            parts.update(learner.train_parts())
        load_checkpoint(step_dir, parts, map_location=learner.device, required=tuple(parts))
        logger.console.info(f"loaded checkpoint {step_dir} (t_env {t_loaded})")

    if getattr(args, "energy", False) and not args.evaluate:
        logger.console.warning("energy=True counts operations only with evaluate=True; this training "
                               "run ignores it (test_firing_rate is logged for spiking actors).")
    tester = _Tester(args, learner, logger)
    if args.evaluate:
        mean = tester(t_loaded)
        if getattr(args, "energy", False):
            from energy.evaluate import report_energy
            report_energy("td3_mujoco", args, logger, t_loaded, actor=learner.actor, states=tester.last_states)
        logger.print_recent_stats()
        logger.console.info(f"evaluation over {args.test_nepisode} episodes: return {mean:.2f}")
        env.close()
        tester.close()
        return
    try:
        train(args, logger, env, tester, learner, step_dir)
    finally:
        env.close()
        tester.close()


def train(args: Any, logger: Any, env: Any, tester: _Tester, learner: TD3MujocoLearner,
          resume_from: Optional[str] = None) -> None:
    """The training loop. Checkpoints are taken at the end of an env step (after its update,
    test and log), where every piece of state agrees, mid-episode included; a Ctrl-C / SIGTERM
    stops the run there too. ``resume_from`` (a step folder whose networks are already loaded)
    restores the rest: replay, loop counters and timers, the current episode (env physics,
    observation, return so far), the tester's best-so-far and history, the noise, global and env RNGs
(evaluations reset their envs with fixed seeds, so they need no RNG state)."""
    obs_dim = int(np.prod(env.observation_space.shape))
    act_dim = int(np.prod(env.action_space.shape))
    max_action = env.action_space.high.astype(np.float32)
    t_max = int(args.t_max)
    replay = TransitionReplay(obs_dim, act_dim, min(int(args.buffer_size_transitions), max(t_max, 1)),
                              seed=int(args.seed))
    rng = np.random.default_rng(int(args.seed) + 1)
    batch_size = int(args.batch_size_transitions)
    noise_scale = float(args.expl_noise) * max_action
    ckpt = Checkpointer(args, logger.console, resume_from)

    train_stats: Dict[str, List[float]] = defaultdict(list)
    loop: Dict[str, Any] = {"t_env": 0, "episode": 0, "ep_ret": 0.0, "ep_len": 0, "last_test": 0, "last_log": 0,
                            "last_save": 0, "ep_returns": [], "ep_lengths": [], "min_replay": batch_size}
    if resume_from is not None:
        lrs = {"actor_lr": (learner.actor_optim, float(args.actor_lr)),
               "critic_lr": (learner.critic_optim, float(args.critic_lr))}
        if learner.proxy is not None:
            lrs["proxy_lr"] = (learner.proxy_optim, float(args.proxy_lr))
        apply_config_lrs(lrs, logger.console.info)   # lr overrides of a resumed run count
        saved = restore_loop(resume_from, logger)
        obs = saved.pop("obs").numpy()
        train_stats.update(saved.pop("train_stats"))
        tester.load_state_dict(saved.pop("tester"))
        loop.update(saved)
        states = restore_plain(resume_from, "rng")
        set_global_rng_state(states["global"])
        set_generator_state(rng, states["noise"])
        set_env_state(env, states["env"])
        if not restore_buffer(resume_from, "replay", replay):
            loop["min_replay"] = max(batch_size, min(int(args.start_steps), replay.capacity))
            logger.console.warning(f"the checkpoint holds no replay (save_buffer=False): updates restart once "
                                   f"{loop['min_replay']} new transitions are stored")
        logger.console.info(f"resumed at t_env {loop['t_env']}, episode {loop['episode']}, "
                            f"{len(replay)} transitions in the replay")
    else:
        tester(0)
        obs, _ = env.reset()
    t_log_wall = time.time()
    t_log_env = loop["t_env"]

    def save(last: bool) -> None:
        if loop["t_env"] == 0:
            return
        state = loop_part({**loop, "obs": torch.as_tensor(np.asarray(obs)), "train_stats": dict(train_stats),
                           "tester": tester.state_dict()}, logger)
        rngs = {"global": global_rng_state(), "noise": generator_state(rng), "env": env_state(env)}
        ckpt.save(loop["t_env"], {**learner.deploy_parts(), **learner.train_parts()},
                  {"loop": state, "rng": rngs}, {"replay": replay}, last)

    with ckpt.guard(save, logger.console.warning) as guard:   # saves the last checkpoint on the way out
        while loop["t_env"] < t_max:
            guard.poll(loop["t_env"])
            if loop["t_env"] < int(args.start_steps):
                action = env.action_space.sample()
            else:
                action = learner.act(obs) + rng.normal(0.0, 1.0, act_dim) * noise_scale
                action = np.clip(action, -max_action, max_action).astype(np.float32)
            next_obs, rew, terminated, truncated, _ = env.step(action)
            replay.add(obs, action, float(rew), next_obs, bool(terminated))
            obs = next_obs
            loop["ep_ret"] += float(rew)
            loop["ep_len"] += 1
            loop["t_env"] = t_env = loop["t_env"] + 1
            if terminated or truncated:
                loop["ep_returns"].append(loop["ep_ret"])
                loop["ep_lengths"].append(loop["ep_len"])
                loop["episode"] += 1
                obs, _ = env.reset()
                loop["ep_ret"], loop["ep_len"] = 0.0, 0

            if t_env >= int(args.start_steps) and len(replay) >= loop["min_replay"]:
                batch = replay.sample(batch_size, learner.device)
                proxy_obs = None
                n_fit = learner.proxy_states_needed
                if n_fit:   # K fresh batches for the proxy fit
                    proxy_obs = replay.sample(n_fit * batch_size, learner.device)["obs"].reshape(
                        n_fit, batch_size, -1)
                for k, v in learner.train_step(batch, proxy_obs).items():
                    train_stats[k].append(v)

            # the test and log at t_max are out of schedule: they move no timer, the tester's history
            # and pending stats stay as they were, so extending a finished run equals a straight run
            if t_env - loop["last_test"] >= int(args.test_interval):
                loop["last_test"] = t_env
                tester(t_env)
            elif t_env == t_max:
                kept = tester.state_dict()
                tester(t_env)
                tester.load_state_dict(kept)

            log_due = t_env - loop["last_log"] >= int(args.log_interval)
            if log_due or t_env == t_max:
                now = time.time()
                sps = (t_env - t_log_env) / max(now - t_log_wall, 1e-9)
                logger.log_stat("steps_per_sec", sps, t_env)
                t_log_wall, t_log_env = now, t_env
                logger.log_stat("episode", loop["episode"], t_env)
                if loop["ep_returns"]:
                    logger.log_stat("return_mean", float(np.mean(loop["ep_returns"])), t_env)
                    logger.log_stat("ep_length_mean", float(np.mean(loop["ep_lengths"])), t_env)
                for k, vals in train_stats.items():
                    logger.log_stat(k, float(np.mean(vals)), t_env)
                if log_due:
                    train_stats.clear()
                    loop["ep_returns"], loop["ep_lengths"] = [], []
                    loop["last_log"] = t_env
                logger.print_progress(t_env, t_max)

            if ckpt.due(t_env, loop["last_save"]) and t_env < t_max:
                loop["last_save"] = t_env
                save(last=False)
    best = max(tester.best, logger.last("test_return_best") or -float("inf"))  # the t_max test included
    logger.console.info(f"finished: best test return {best:.2f}")
