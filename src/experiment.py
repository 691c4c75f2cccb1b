"""The experiment command: run, watch and report a grid described by a spec in config/experiments/.

    python src/experiment.py run SPEC [--results DIR] [--records DIR] [--address ADDR]
                                      [--deadline DURATION] [--max-parallel N] [--point ID ...]
    python src/experiment.py status SPEC [--results DIR] [--records DIR]
    python src/experiment.py report SPEC [--records DIR] [--out DIR] [--where FIELD=VALUE ...]
    python src/experiment.py docs [--check]          # every docs/ page from docs/records
    python src/experiment.py migrate SPEC FILE.json ... [--records DIR] [--commit SHA]
    python src/experiment.py list

SPEC is a name (``table2`` = config/experiments/table2.yaml) or a path. Defaults: results (training
folders) under results/experiments, records under <results>/records, reports under
<results>/reports. The committed records of the paper tables are in docs/records; ``docs``
regenerates docs/*.md from them and README's results summary (``--check``: fail if anything differs).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
# checking map names imports JAX; Ray then starts its processes by fork + exec, which runs no JAX code
warnings.filterwarnings("ignore", message=r"os.fork\(\) was called")
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from experiments.spec import SpecError, available_specs, load_spec  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RESULTS = os.path.join("results", "experiments")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python src/experiment.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run (or continue) every point without a record, on Ray")
    r.add_argument("spec")
    r.add_argument("--results", default=DEFAULT_RESULTS, help="training folders (default %(default)s)")
    r.add_argument("--records", default=None, help="where records go (default <results>/records)")
    r.add_argument("--address", default=None, help="a running Ray cluster (ray start --head); default: local Ray")
    r.add_argument("--deadline", default=None, help="stop every point cleanly after this long: 90s, 45m, 2h")
    r.add_argument("--max-parallel", type=int, default=None, help="points at a time (default: CPUs / cpus per point)")
    r.add_argument("--point", action="append", default=None, help="run only this point id (repeatable)")
    s = sub.add_parser("status", help="done / partly trained / not started, per point")
    s.add_argument("spec")
    s.add_argument("--results", default=DEFAULT_RESULTS)
    s.add_argument("--records", default=None)
    rep = sub.add_parser("report", help="tables, verdicts, plots and exports from the records")
    rep.add_argument("spec")
    rep.add_argument("--records", default=None, help=f"default {DEFAULT_RESULTS}/records")
    rep.add_argument("--out", default=None, help=f"default {DEFAULT_RESULTS}/reports")
    rep.add_argument("--where", action="append", default=[], help="FIELD=VALUE filter on records (repeatable)")
    d = sub.add_parser("docs", help="regenerate docs/ pages and README's summary from docs/records")
    d.add_argument("--check", action="store_true", help="fail when a regenerated file differs from the committed one")
    m = sub.add_parser("migrate", help="records from the grid files of the earlier benchmark scripts")
    m.add_argument("spec")
    m.add_argument("sources", nargs="+")
    m.add_argument("--records", default=os.path.join("docs", "records"))
    m.add_argument("--commit", default="", help="the git commit the sources are read from (named in the records)")
    sub.add_parser("list", help="the available specs")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "list":
            for name in available_specs():
                spec = load_spec(name, validate_points=False)
                print(f"{name:16s} {len(spec.points):4d} points  {spec.title}")
            return 0
        if a.cmd == "docs":
            from experiments.docs import regenerate
            return regenerate(check=a.check)
        spec = load_spec(a.spec)
        if a.cmd == "run":
            from experiments.launcher import LauncherError, parse_duration, run_grid
            records = a.records or os.path.join(a.results, "records")
            if a.point:
                unknown = sorted(set(a.point) - {p.id for p in spec.points})
                if unknown:
                    raise SpecError(f"--point {unknown[0]}: not a point of {spec.name}; e.g. {spec.points[0].id}")
            try:
                return run_grid(spec, a.results, records, a.address, parse_duration(a.deadline), a.max_parallel,
                                a.point)
            except LauncherError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        if a.cmd == "status":
            from experiments.launcher import status_lines
            print("\n".join(status_lines(spec, a.results, a.records or os.path.join(a.results, "records"))))
            return 0
        if a.cmd == "report":
            from experiments.report import write_report
            records = a.records or os.path.join(DEFAULT_RESULTS, "records")
            out = a.out or os.path.join(DEFAULT_RESULTS, "reports")
            where = []
            for item in a.where:
                if "=" not in item:
                    raise SpecError(f"--where {item!r}: write FIELD=VALUE, e.g. --where seed=1")
                where.append(tuple(item.split("=", 1)))
            summary = write_report(spec, records, out, where=where)
            print(f"{spec.name}: {summary['n_records']} records -> {os.path.join(out, spec.name + '.md')}")
            for s in summary["skipped"]:
                print(f"  skipped {s['file']}: {s['reason']}")
            for note in summary["data_checks"]:
                print(f"  note: {note}")
            return 0
        if a.cmd == "migrate":
            from experiments.migrate import migrate
            from experiments.records import write_record
            records, notes = migrate(spec, a.sources, a.commit)
            for r in records:
                write_record(a.records, r)
            print(f"{spec.name}: {len(records)} records written to {a.records}/{spec.name}")
            for n in notes:
                print(f"  not migrated: {n}")
            return 0
    except (SpecError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
