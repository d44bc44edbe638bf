"""Mutation testing (`make mutation`, docs/testing.md): mutmut over the modules of pyproject.toml's
``[tool.mutmut] only_mutate``, one module at a time, each with only its own test file
(bharnet_ros/core/x.py -> test/core/test_x.py, bharnet_ros/model/export.py -> test/model/test_export.py).

Each module runs from scratch in .mutmut/<name>/: links to the checkout plus a pyproject.toml whose
``[tool.mutmut]`` is narrowed to that module and test file, so mutmut's mutants/, stats and cache stay
apart per module. The score (killed / mutants, timeouts counted as killed) and every mutant that was
not killed, with its diff, are printed and written to .mutmut/<name>/score.md and, for all modules of
this run, .mutmut/scores.md. A benchmark, not a gate: the exit status is non-zero only when mutmut
itself fails.

    python .ci/mutation.py                       # every module
    python .ci/mutation.py smoothing resample    # some of them, by file stem
    python .ci/mutation.py --jobs 1              # mutmut worker processes (default: CPU count)
    python .ci/mutation.py --report              # print the last results again, run nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from mutmut.stats import status_by_exit_code

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".mutmut"
LINKED = ("bharnet_ros", "test", "pytest.ini", "package.xml", "config", "models")
MUTMUT = Path(sys.executable).with_name("mutmut")
# Narrower test selections where a module's whole test file is too slow to run per mutant: the
# export tests export and check every variant (5-9 s each); four variants cover every code path of
# export.py (single stream, Noisy-OR with its hand mask, BHaRNet-E and its expert-only form).
SELECTIONS = {
    "bharnet_ros/model/export.py": [
        "-k",
        "not (matches_pytorch and (hand_expert or bharnet_p or bharnet_e_noisy_or"
        " or (score_fusion and not noisy_or)))",
    ],
}


def test_file(module: str) -> str:
    """The one test file of a module: bharnet_ros/<sub>/<name>.py -> test/<sub>/test_<name>.py."""
    path = Path(module)
    return str(Path("test", *path.parts[1:-1], f"test_{path.name}"))


def prepare(module: str, base: dict) -> Path:
    """A fresh .mutmut/<name>/ that mutates only ``module`` and runs only its test file."""
    work = WORK / Path(module).stem
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in LINKED:
        (work / name).symlink_to(REPO / name)
    selection = [test_file(module), *SELECTIONS.get(module, [])]
    settings = {**base, "only_mutate": [module], "pytest_add_cli_args_test_selection": selection}
    # JSON strings, numbers, booleans and lists of them are also valid TOML.
    lines = ["[tool.mutmut]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return work


def by_number(item: tuple[str, str]) -> tuple[str, int]:
    """Order mutant names (``<function>__mutmut_<n>``) by function, then by number."""
    function, _, number = item[0].rpartition("__mutmut_")
    return function, int(number)


def show(name: str, work: Path) -> str:
    """The mutant's diff, without mutmut's own ``# name: status`` heading."""
    text = subprocess.run([MUTMUT, "show", name], cwd=work, capture_output=True, text=True).stdout
    return text.split("\n", 1)[1] if text.startswith("#") else text


def measure(module: str, base: dict, jobs: int) -> dict:
    """Run mutmut on one module from scratch, then :func:`collect` its results."""
    work = prepare(module, base)
    start = time.monotonic()
    with open(work / "mutmut.log", "w") as log:
        run = subprocess.run([MUTMUT, "run", "--max-children", str(jobs)], cwd=work, stdout=log, stderr=log)
    (work / "seconds").write_text(f"{time.monotonic() - start:.0f}\n")
    if run.returncode != 0:
        return {"module": module, "error": f"mutmut exited {run.returncode}; see {work / 'mutmut.log'}"}
    return collect(module)


def collect(module: str) -> dict:
    """Counts and survivors of the last run of ``module`` in .mutmut/<name>/."""
    work = WORK / Path(module).stem
    meta = work / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {"module": module, "error": f"no results in {work}"}
    exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
    status = {name: status_by_exit_code[code] for name, code in exit_codes.items()}
    others = {name: s for name, s in sorted(status.items(), key=by_number) if s not in ("killed", "timeout")}
    seconds = work / "seconds"
    return {
        "module": module,
        "tests": test_file(module),
        "mutants": len(status),
        "killed": sum(s in ("killed", "timeout") for s in status.values()),
        "timeouts": sum(s == "timeout" for s in status.values()),
        "minutes": f"{int(seconds.read_text()) / 60:.1f}" if seconds.exists() else "",
        "not_killed": others,
        "diffs": {name: show(name, work) for name in others},
    }


def report(results: list[dict]) -> str:
    lines = [
        "| module | tests | mutants | killed (of them timeouts) | score | minutes |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['module']} | | | | {r['error']} | |")
            continue
        score = 100 * r["killed"] / r["mutants"] if r["mutants"] else 100.0
        lines.append(
            f"| {r['module']} | {r['tests']} | {r['mutants']} | {r['killed']} ({r['timeouts']}) "
            f"| {score:.1f} % | {r['minutes']} |"
        )
    for r in results:
        for name, status in r.get("not_killed", {}).items():
            lines += ["", f"### {name}: {status}", "", "```diff", r["diffs"][name].strip(), "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="file stems (smoothing, export, ...); default: all")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report", action="store_true", help="only report the last runs, run nothing")
    args = parser.parse_args()
    base = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    modules = [m for m in base["only_mutate"] if not args.modules or Path(m).stem in args.modules]
    unknown = set(args.modules) - {Path(m).stem for m in modules}
    if unknown:
        parser.error(f"not in [tool.mutmut] only_mutate: {', '.join(sorted(unknown))}")
    results = []
    for module in modules:
        if args.report:
            results.append(collect(module))
            continue
        print(f"mutmut: {module} with {test_file(module)} ...", flush=True)
        results.append(measure(module, base, args.jobs))
        (WORK / Path(module).stem / "score.md").write_text(report(results[-1:]))
        (WORK / "scores.md").write_text(report(results))
    print(report(results))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
