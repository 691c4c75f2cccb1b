"""Run loop: single-agent recurrent off-policy RL on partially observable control (``run: po_rl``).

After Ni et al. (2022) and the GRSN paper's Table 1: separate actor and twin critic, each with
observation / previous-action / previous-reward embedders, a sequence core (``agent`` =
mlp | gru | lif | grsn) and an MLP head; TD3 (``--config=td3``) for continuous actions,
SAC-discrete (``--config=sacd``) for discrete ones.

Loop: ``po_init_random_episodes`` uniform-random episodes, then episodes of the exploring
policy. The actor's core state starts at zero each episode and is threaded one step per
environment step (spiking cores with TAP included). After each episode the learner makes
``po_updates_per_step * episode_length`` updates on ``po_batch_size`` windows of
``sampled_seq_len`` steps (each window unrolled from a zero state; -1: whole episodes). A deterministic evaluation
over ``test_nepisode`` episodes runs at t_env = 0, every ``test_interval`` steps and at the end.

Logged stats: ``return_mean/std``, ``ep_length_mean``, ``episode``, ``test_return_mean/std``,
``test_ep_length_mean``, ``critic_loss``, ``actor_loss``, ``q_taken_mean``, ``target_mean``,
``alpha`` and ``entropy`` (SAC-d), ``steps_per_sec``.

Checkpoints (``save_model``): actor, critic, target nets, optimisers (and log_alpha), learner and
loop counters, RNG states every ``save_model_interval`` steps and at the end or on Ctrl-C / SIGTERM,
the replay with the last one (and with every one when ``save_buffer=True``). ``checkpoint_path``
resumes training exactly (``train``); with ``evaluate=True`` only the actor is loaded and
``test_nepisode`` deterministic episodes are run and logged.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from components.episode_replay import EpisodeReplay
from modules.agents.po_actor import POActor
from modules.critics.po_critic import POTwinCritic
from utils.config import check_keys
from utils.device import resolve_device
from utils.checkpoint import (Checkpointer, find_checkpoint, load_checkpoint, loop_part, restore_buffer, restore_loop,
                              restore_plain)
from utils.optim import apply_config_lrs
from utils.registry import lookup
from utils.seeding import global_rng_state, gym_env_rng_state, set_global_rng_state, set_gym_env_rng_state


def _learners() -> Dict[str, Any]:
    from learners.sacd_po import SACDPOLearner
    from learners.td3_po import TD3POLearner
    reg: Dict[str, Any] = {}
    reg["td3"] = TD3POLearner
    reg["sacd"] = SACDPOLearner
    return reg


def make_env(args: Any, seed: int) -> Any:
    """The pomdp env of ``args.env_args`` seeded with ``seed``."""
    from envs.pomdp import make_pomdp_env
    if getattr(args, "env", "pomdp") != "pomdp":
        raise ValueError(f"the po_rl loop runs only on --env-config=pomdp, got env='{args.env}'.")
    return make_pomdp_env(seed=seed, **dict(args.env_args))


# The keys this loop reads whose ranges default.yaml declares.
CHECKED_KEYS = ("sampled_seq_len", "po_batch_size", "po_buffer_episodes", "po_hidden_dim", "po_obs_embed",
                "test_nepisode", "t_max", "test_interval", "po_init_random_episodes", "po_updates_per_step")


def check_args(args: Any) -> None:
    """Validate this loop's keys against default.yaml (ConfigError naming the key and its range)."""
    check_keys(args, CHECKED_KEYS)


def prev_action_input(action: Any, act_dim: int, discrete: bool, device: Any = "cpu") -> torch.Tensor:
    """The actor's previous-action input ``[1, act_dim]`` for an env action (one-hot for discrete actions)."""
    vec = torch.zeros(1, act_dim, device=device)
    if discrete:
        vec[0, int(action)] = 1.0
    else:
        vec[0] = torch.as_tensor(np.asarray(action, dtype=np.float32), device=device)
    return vec


class EpisodeRunner:
    """Plays whole episodes with the actor, threading its core state one step per env step."""

    def __init__(self, env: Any, actor: POActor, learner: Any, device: torch.device) -> None:
        self.env, self.actor, self.learner, self.device = env, actor, learner, device
        self.discrete = env.discrete
        self.act_dim = env.act_dim

    @torch.no_grad()
    def run(self, mode: str) -> Dict[str, np.ndarray]:
        """One episode; ``mode``: "random" (uniform actions), "explore" or "greedy".

        Returns ``obs [n+1, obs_dim]``, ``act [n, act_dim]`` (discrete: ``[n]`` indices),
        ``rew [n]``, ``term [n]`` (true termination only).
        """
        obs, _ = self.env.reset()
        state = self.actor.init_state(1)
        prev_a = torch.zeros(1, self.act_dim, device=self.device)
        prev_r = torch.zeros(1, 1, device=self.device)
        obs_l, act_l, rew_l, term_l = [obs], [], [], []
        while True:
            if mode == "random":
                action = self.env.action_space.sample()
            else:
                o = torch.as_tensor(obs, device=self.device).unsqueeze(0)
                out, state = self.actor.step(o, prev_a, prev_r, state)
                a = self.learner.select_action(out, explore=(mode == "explore"))[0]
                action = int(a.item()) if self.discrete else a.cpu().numpy().astype(np.float32)
            obs, rew, terminated, truncated, _ = self.env.step(action)
            obs_l.append(obs)
            act_l.append(action)
            rew_l.append(rew)
            term_l.append(float(terminated))
            prev_a = prev_action_input(action, self.act_dim, self.discrete, self.device)
            prev_r = torch.full((1, 1), float(rew), device=self.device)
            if terminated or truncated:
                break
        act = np.asarray(act_l, dtype=np.int64 if self.discrete else np.float32)
        return {"obs": np.stack(obs_l).astype(np.float32), "act": act,
                "rew": np.asarray(rew_l, dtype=np.float32), "term": np.asarray(term_l, dtype=np.float32)}


def evaluate(runner: EpisodeRunner, n_episodes: int) -> Tuple[List[float], List[int]]:
    """``n_episodes`` deterministic episodes; returns (returns, lengths)."""
    returns, lengths = [], []
    for _ in range(int(n_episodes)):
        ep = runner.run("greedy")
        returns.append(float(ep["rew"].sum()))
        lengths.append(int(ep["rew"].shape[0]))
    return returns, lengths


def build(args: Any, env: Any, device: torch.device) -> Tuple[POActor, POTwinCritic, Any]:
    """Actor, critic and learner for ``env`` from ``args`` (``agent``, ``po_learner``, ...)."""
    actor = POActor(env.obs_dim, env.act_dim, env.discrete, args).to(device)
    critic = POTwinCritic(env.obs_dim, env.act_dim, env.discrete, args).to(device)
    learner = lookup(_learners(), str(args.po_learner), what="po_learner")(actor, critic, args)
    return actor, critic, learner


def config_lrs(args: Any, learner: Any) -> Dict[str, Tuple[torch.optim.Optimizer, float]]:
    """``{config key: (optimiser, lr)}`` of the learner's optimisers (``utils.optim.apply_config_lrs``)."""
    out = {"actor_lr": (learner.actor_opt, float(args.actor_lr)),
           "critic_lr": (learner.critic_opt, float(args.critic_lr))}
    if hasattr(learner, "alpha_opt"):
        out["alpha_lr"] = (learner.alpha_opt, float(args.alpha_lr))
    return out


def _log_test(logger: Any, returns: List[float], lengths: List[int], t_env: int) -> None:
    logger.log_stat("test_return_mean", float(np.mean(returns)), t_env)
    logger.log_stat("test_return_std", float(np.std(returns)), t_env)
    logger.log_stat("test_ep_length_mean", float(np.mean(lengths)), t_env)
    logger.print_test(t_env)


def run_po_rl(args: Any, logger: Any) -> None:
    """Train (or with ``evaluate=True`` evaluate) on ``env_args.key``; see the module docstring."""
    check_args(args)
    device = torch.device(resolve_device(getattr(args, "device", "auto")))
    seed = int(args.seed)
    env = make_env(args, seed)
    test_env = make_env(args, seed + 100_000)
    actor, critic, learner = build(args, env, device)
    runner = EpisodeRunner(env, actor, learner, device)
    test_runner = EpisodeRunner(test_env, actor, learner, device)
    logger.console.info(f"po_rl: {args.env_args['key']} agent={args.agent} learner={args.po_learner} "
                        f"obs_dim={env.obs_dim} act_dim={env.act_dim} discrete={env.discrete} "
                        f"device={device}")

    step_dir = None
    t_loaded = 0
    if getattr(args, "checkpoint_path", ""):
        step_dir, t_loaded = find_checkpoint(args.checkpoint_path, int(getattr(args, "load_step", 0)),
                                             warn=logger.console.warning)
        logger.console.info(f"loading checkpoint {step_dir} (t_env {t_loaded})")
    if args.evaluate:
        if step_dir is not None:
            load_checkpoint(step_dir, {"actor": actor, "critic": critic}, map_location=device, required=("actor",))
        if args.energy:
            from energy.evaluate import report_energy
            report_energy("po_rl", args, logger, t_loaded, actor=actor, critic=critic, episode_runner=test_runner)
        elif step_dir is None:
            raise ValueError("evaluate=True needs checkpoint_path=<results/models/<token>> to load an actor.")
        returns, lengths = evaluate(test_runner, int(args.test_nepisode))
        _log_test(logger, returns, lengths, t_loaded)
        logger.console.info(f"evaluation over {args.test_nepisode} episodes: return "
                            f"{np.mean(returns):.2f} +- {np.std(returns):.2f}")
        logger.print_recent_stats()
        return
    train(args, logger, env, test_env, runner, test_runner, learner, device, step_dir)


def train(args: Any, logger: Any, env: Any, test_env: Any, runner: EpisodeRunner, test_runner: EpisodeRunner,
          learner: Any, device: torch.device, resume_from: Optional[str] = None) -> None:
    """The training loop. Checkpoints are taken at the end of an iteration (after an episode, its
    updates, logs and any due test), the point where every piece of state agrees; a Ctrl-C /
    SIGTERM stops the run there too. ``resume_from`` restores all of it: learner (networks,
    targets, optimisers, counters), replay, loop counters and timers, global and env RNGs."""
    replay = EpisodeReplay(int(args.po_buffer_episodes), env.obs_dim, env.act_dim,
                           env.max_episode_steps, discrete=env.discrete, seed=int(args.seed))
    t_max = int(args.t_max)
    seq_len, batch_size = int(args.sampled_seq_len), int(args.po_batch_size)
    ckpt = Checkpointer(args, logger.console, resume_from)
    test_interval = max(1, int(args.test_interval))
    runner_log = max(1, int(getattr(args, "runner_log_interval", args.log_interval)))
    learner_log = max(1, int(getattr(args, "learner_log_interval", args.log_interval)))
    log_interval = max(1, int(args.log_interval))
    never = -10 ** 12
    loop: Dict[str, Any] = {
        "t_env": 0, "episode": 0, "updates_owed": 0.0, "n_random": int(args.po_init_random_episodes),
        "learn_from": 0, "last_test": never, "last_runner_log": never, "last_learner_log": never,
        "last_log": never, "last_save": 0, "ep_returns": [], "ep_lengths": [], "train_stats": {}}
    if resume_from is not None:
        load_checkpoint(resume_from, learner.parts(), map_location=device, required=tuple(learner.parts()))
        apply_config_lrs(config_lrs(args, learner), logger.console.info)  # actor_lr=/critic_lr= overrides count
        loop.update(restore_loop(resume_from, logger))
        rng = restore_plain(resume_from, "rng")
        set_global_rng_state(rng["global"])
        set_gym_env_rng_state(env, rng["env"])
        set_gym_env_rng_state(test_env, rng["test_env"])
        if not restore_buffer(resume_from, "replay", replay):
            loop["learn_from"] = loop["episode"] + max(1, int(args.po_init_random_episodes))
            logger.console.warning(f"the checkpoint holds no replay (save_buffer=False): "
                                   f"{loop['learn_from'] - loop['episode']} episodes of the current policy "
                                   f"refill it before updates restart")
        logger.console.info(f"resumed at t_env {loop['t_env']}, episode {loop['episode']}, "
                            f"{len(replay)} episodes in the replay")
    train_stats: Dict[str, List[float]] = defaultdict(list, loop.pop("train_stats"))
    last_time = time.time()
    last_t = loop["t_env"]

    def save(last: bool) -> None:
        if loop["t_env"] > 0:
            rng = {"global": global_rng_state(), "env": gym_env_rng_state(env),
                   "test_env": gym_env_rng_state(test_env)}
            ckpt.save(loop["t_env"], learner.parts(),
                      {"loop": loop_part({**loop, "train_stats": dict(train_stats)}, logger), "rng": rng},
                      {"replay": replay}, last)

    def tests_and_console() -> None:
        """Tests and progress lines on their schedule, plus one of each at t_max. The end-of-run
        ones are out of schedule: they move no timer and the test env's RNG is put back after
        the test, so extending a finished run with a larger t_max equals a straight run."""
        nonlocal last_time, last_t
        t_env = loop["t_env"]
        if t_env - loop["last_test"] >= test_interval:
            returns, lengths = evaluate(test_runner, int(args.test_nepisode))
            _log_test(logger, returns, lengths, t_env)
            loop["last_test"] = t_env
        elif t_env >= t_max:
            before = gym_env_rng_state(test_env)
            returns, lengths = evaluate(test_runner, int(args.test_nepisode))
            _log_test(logger, returns, lengths, t_env)
            set_gym_env_rng_state(test_env, before)
        due = t_env - loop["last_log"] >= log_interval
        if due or t_env >= t_max:
            now = time.time()
            if t_env > last_t:
                logger.log_stat("steps_per_sec", (t_env - last_t) / max(now - last_time, 1e-9), t_env)
            logger.print_progress(t_env, t_max)
            last_time, last_t = now, t_env
            if due:
                loop["last_log"] = t_env

    if resume_from is None:
        tests_and_console()  # the evaluation at t_env = 0
    with ckpt.guard(save, logger.console.warning) as guard:   # saves the last checkpoint on the way out
        while loop["t_env"] < t_max:
            guard.poll(loop["t_env"])
            episode = loop["episode"]
            ep = runner.run("random" if episode < loop["n_random"] else "explore")
            replay.add_episode(ep["obs"], ep["act"], ep["rew"], ep["term"])
            n = int(ep["rew"].shape[0])
            loop["t_env"] += n
            loop["episode"] = episode = episode + 1
            t_env = loop["t_env"]
            loop["ep_returns"].append(float(ep["rew"].sum()))
            loop["ep_lengths"].append(n)

            if episode >= max(loop["n_random"], loop["learn_from"]):
                loop["updates_owed"] += float(args.po_updates_per_step) * n
                while loop["updates_owed"] >= 1.0:
                    stats = learner.train(replay.sample(batch_size, seq_len, device=device))
                    for k, v in stats.items():
                        train_stats[k].append(v)
                    loop["updates_owed"] -= 1.0

            if t_env - loop["last_runner_log"] >= runner_log and loop["ep_returns"]:
                logger.log_stat("return_mean", float(np.mean(loop["ep_returns"])), t_env)
                logger.log_stat("return_std", float(np.std(loop["ep_returns"])), t_env)
                logger.log_stat("ep_length_mean", float(np.mean(loop["ep_lengths"])), t_env)
                logger.log_stat("episode", episode, t_env)
                loop["ep_returns"], loop["ep_lengths"] = [], []
                loop["last_runner_log"] = t_env
            if t_env - loop["last_learner_log"] >= learner_log and train_stats:
                for k, vals in train_stats.items():
                    finite = [v for v in vals if np.isfinite(v)]
                    if finite:
                        logger.log_stat(k, float(np.mean(finite)), t_env)
                train_stats = defaultdict(list)
                loop["last_learner_log"] = t_env
            tests_and_console()
            if ckpt.due(t_env, loop["last_save"]) and t_env < t_max:
                loop["last_save"] = t_env
                save(last=False)
