"""`make mutants`: mutation testing of the code whose bugs would change the study's claims.

mutmut (the ``mutants`` extra; settings in pyproject.toml ``[tool.mutmut]``) copies the package to
``mutants/``, changes one function at a time (a comparison flipped, a constant moved, an argument
dropped) and runs the fast tests that reach that function; a mutant no test notices survives.
Here mutmut runs on the functions of ``TARGETS`` only; the score per part and the survivors (with
the reason each one judged equivalent is harmless) go to ``results/bench.json`` ``mutants``.
Not part of `make test` or CI: it takes a quarter of an hour of CPU or so.
"""

import collections
import fnmatch
import importlib.metadata
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from filmgenre import files

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = [sys.executable, "-m", "mutmut"]

# The parts whose bugs would change a claim, as mutmut names their mutants
# (``<module>.x_<function>__mutmut_<n>``, ``<module>.xǁ<Class>ǁ<method>__mutmut_<n>``).
TARGETS = {
    "decision rules (rules.py)": [f"filmgenre.rules.x_{f}__mutmut_*" for f in (
        "present_genres", "apply_rule", "choose_rule", "shrunk_thresholds", "middle_best", "f1_from_counts",
        "f1_over", "micro_f1", "macro_f1")],
    "fusion.py": [f"filmgenre.fusion.x_{f}__mutmut_*" for f in ("fuse", "choose_weight", "best_member")],
    "uncertainty.py": [f"filmgenre.uncertainty.x_{f}__mutmut_*" for f in (
        "resample_counts", "scored_genres", "f1_scores", "average_precisions", "macro_average_precision",
        "interval", "difference", "bootstrap", "point_estimates", "top1_test", "modality_pairs", "claims")],
    "the split (dataset.py)": [f"filmgenre.dataset.x_{f}__mutmut_*" for f in ("make_split", "ensure_split")],
    "files.py": ["filmgenre.files.x_*"],
    "the weights reader (encoders/torchfile.py)": [
        *(f"filmgenre.encoders.torchfile.x_{f}__mutmut_*" for f in ("_rebuild_tensor", "read_torch_legacy")),
        "filmgenre.encoders.torchfile.xǁ_TensorsOnlyǁ*", "filmgenre.encoders.torchfile.xǁ_TensorRefǁ*"],
}

# Survivors judged equivalent: no input changes what the function returns or raises. Keyed by
# mutant name; ``mutmut show NAME`` prints the change.
EQUIVALENT: dict[str, str] = {}


def part_of(mutant: str) -> str | None:
    return next((part for part, patterns in TARGETS.items()
                 if any(fnmatch.fnmatch(mutant, pattern) for pattern in patterns)), None)


def statuses() -> dict[str, str]:
    """Every mutant's verdict from ``mutmut results --all true``."""
    listing = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    return dict(re.findall(r"^\s+(\S+): (.+)$", listing, flags=re.MULTILINE))


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    started, cpu_started = time.perf_counter(), children_cpu_seconds()
    patterns = [pattern for part in TARGETS.values() for pattern in part]
    subprocess.run([*MUTMUT, "run", "--max-children", str(os.cpu_count() or 1), *patterns], cwd=ROOT, check=True)
    seconds, cpu_seconds = time.perf_counter() - started, children_cpu_seconds() - cpu_started

    counts = collections.defaultdict(collections.Counter)
    survivors = collections.defaultdict(list)
    for mutant, status in statuses().items():
        part = part_of(mutant)
        if part is None:
            continue
        counts[part][status] += 1
        if status != "killed":
            survivors[part].append(mutant)
    parts = {}
    for part in TARGETS:
        total, killed = sum(counts[part].values()), counts[part]["killed"]
        equivalent = [m for m in survivors[part] if m in EQUIVALENT]
        parts[part] = {"mutants": total, "killed": killed, "verdicts": dict(counts[part]),
                       "score": round(killed / total, 3) if total else None,
                       "score_without_equivalent": round(killed / (total - len(equivalent)), 3)
                       if total > len(equivalent) else None,
                       "equivalent": {m: EQUIVALENT[m] for m in equivalent},
                       "other_survivors": [m for m in survivors[part] if m not in EQUIVALENT]}
    total = sum(p["mutants"] for p in parts.values())
    killed = sum(p["killed"] for p in parts.values())
    equivalent = sum(len(p["equivalent"]) for p in parts.values())
    section = {
        "command": "make mutants", "tool": f"mutmut {importlib.metadata.version('mutmut')}",
        "tests": "the fast tests of pyproject.toml [tool.mutmut] pytest_add_cli_args_test_selection that reach "
                 "each mutated function",
        "mutants": total, "killed": killed, "score": round(killed / total, 3),
        "score_without_equivalent": round(killed / (total - equivalent), 3),
        "seconds": round(seconds), "cpu_seconds": round(cpu_seconds), "parts": parts,
    }
    files.merge_json(ROOT / "results" / "bench.json", "mutants", section)
    for part, result in parts.items():
        print(f"{part}: {result['killed']}/{result['mutants']} killed; survivors: "
              f"{', '.join(result['other_survivors'] + list(result['equivalent'])) or 'none'}")
    print(f"mutants: {killed}/{total} killed ({section['score']:.1%}; {section['score_without_equivalent']:.1%} "
          f"without the {equivalent} equivalent), {cpu_seconds:.0f} CPU s; results/bench.json `mutants`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
