"""Memory of resuming: a replay part loaded into an allocated buffer, memory-mapped or not.

A resumed run allocates its replay in full (``EpisodeBuffer``, ``torch.zeros``) and then copies
the checkpoint's ``buffer.pt`` into it. ``utils.checkpoint.load_part`` memory-maps the file when
loading to the CPU, so the loaded copy is page cache (reclaimable) instead of a second
anonymous copy; ``plain`` is ``torch.load`` without ``mmap``, as before that change. Each variant
runs in a fresh process: allocate ``--mib`` MiB, load a saved part of that size, copy it in; the
process's anonymous resident memory (``RssAnon`` in /proc/self/status, what the OOM killer
counts) is read after the allocation, after the load and after the copy. Rounds alternate the
order (plain, mmap, mmap, plain, ...). Linux only.

    python benchmarks/resume_memory.py                 # 1 GiB part, 2 rounds (~1 min)

Writes benchmarks/results/resume_memory.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from report import write_report  # noqa: E402  (benchmarks/report.py)

VARIANTS = ("plain", "mmap")

CHILD = r"""
import json, sys
sys.path.insert(0, {src!r})
import torch
from utils.checkpoint import load_part

def anon_gib():
    with open("/proc/self/status") as fh:
        kib = next(int(l.split()[1]) for l in fh if l.startswith("RssAnon:"))
    return kib / 2**20

n = {numel}
buffer = torch.zeros(n)            # the run's replay, allocated in full at start
buffer += 0.0                      # touched, as a run's buffer is
out = {{"after_alloc": anon_gib()}}
if {variant!r} == "plain":
    state = torch.load({path!r}, map_location="cpu", weights_only=True)
else:
    state = load_part({path!r})
out["after_load"] = anon_gib()
buffer.copy_(state["storage"]["obs"])
out["after_copy"] = anon_gib()
del state
out["after_free"] = anon_gib()
print(json.dumps(out))
"""


def measure(variant: str, path: str, numel: int) -> Dict[str, float]:
    """One fresh process: the anonymous memory (GiB) after allocating, loading and copying."""
    code = CHILD.format(src=os.path.join(ROOT, "src"), numel=numel, variant=variant, path=path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the {variant} measurement failed (rc {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=int, default=1024, help="size of the replay part (MiB)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of (plain, mmap), order alternating")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--tag", default="resume_memory")
    a = p.parse_args(argv)
    if not os.path.exists("/proc/self/status"):
        p.error("this benchmark reads /proc/self/status (RssAnon): run it on Linux")
    if a.mib < 1 or a.rounds < 1:
        p.error("--mib and --rounds must be at least 1")
    import torch

    from utils.checkpoint import save_checkpoint

    numel = a.mib * 2**20 // 4
    samples: Dict[str, List[Dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        step = save_checkpoint(tmp, 1, {"buffer": {"storage": {"obs": torch.rand(numel)}}})
        path = os.path.join(step, "buffer.pt")
        for r in range(a.rounds):
            for variant in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
                samples[variant].append(measure(variant, path, numel))
    rows: Dict[str, Any] = {}
    for v in VARIANTS:
        rows[v] = {k: statistics.median(s[k] for s in samples[v]) for k in samples[v][0]}
        rows[v]["peak"] = statistics.median(max(s.values()) for s in samples[v])
        rows[v]["peak_over_part"] = (rows[v]["peak"] - rows[v]["after_alloc"] + a.mib / 1024) / (a.mib / 1024)
    ratio = rows["mmap"]["peak"] / rows["plain"]["peak"]
    lines = [f"Replay part of {a.mib} MiB copied into a buffer of the same size; median of {a.rounds} fresh "
             f"processes per variant, order alternating. Anonymous resident memory (GiB):", "",
             "| load | after allocating | after loading | after copying | peak | peak / part size |",
             "|---|---|---|---|---|---|"]
    for v in VARIANTS:
        r = rows[v]
        name = "torch.load (plain)" if v == "plain" else "load_part (memory-mapped)"
        lines.append(f"| {name} | {r['after_alloc']:.2f} | {r['after_load']:.2f} | {r['after_copy']:.2f} | "
                     f"{r['peak']:.2f} | {r['peak_over_part']:.2f} |")
    lines += ["", f"peak memory-mapped / plain: {ratio:.2f}"]
    md = "\n".join(lines)
    write_report(a.out, a.tag, {"config": vars(a), "variants": rows, "samples": samples,
                                "peak_ratio_mmap_over_plain": ratio}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
