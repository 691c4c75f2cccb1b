"""The base of the tiny QMIX specs the launcher tests write (smoke-sized batches, tests every 1k steps)."""

TINY_BASE = """
base:
  config: qmix
  env_config: smax
  with: {test_interval: 1000, test_nepisode: 8, batch_size: 8, buffer_size: 64, batch_size_run: 4,
         epsilon_anneal_time: 2000, log_interval: 1000, runner_log_interval: 1000, learner_log_interval: 1000}
"""
