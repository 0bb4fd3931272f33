"""`make mutants`: mutation testing of the code whose bugs would change the study's claims.

mutmut (the ``mutants`` extra; settings in pyproject.toml ``[tool.mutmut]``) copies the package to
``mutants/``, changes one function at a time (a comparison flipped, a constant moved, an argument
dropped) and runs the fast tests that reach that function; a mutant no test notices survives.
Here mutmut runs on the functions of ``TARGETS`` only; the score per part and the survivors (with
the reason each one judged equivalent is harmless) go to ``results/bench.json`` ``mutants``.
Not part of `make test` or CI: it takes about 400 CPU seconds (388 on 2026-12-01).
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

# Verdicts that count as caught: the tests failed, or crashed the process running them.
CAUGHT = ("killed", "segfault")

# Survivors judged equivalent: no input the study gives changes what the function returns or
# raises. Keyed by mutant name; ``mutmut show NAME`` prints the change.
_FLOAT64 = "np.asarray of Python floats (or of float64 F1 scores) is float64 already"
_EXACT = ("the dtype of 0/1 labels, of probabilities only sorted and compared, or of integer counts changes no sum: "
          "they stay exact")
_UTF8 = "'UTF-8' and 'utf-8' name the same codec"
_LOCALE = ("encoding=None is the locale's: UTF-8 on every machine the study runs on (C.UTF-8 here, CI's Linux); "
           "a non-UTF-8 locale would tell, and no test can set one for the running interpreter")
_FIRST_SPLIT = ("make_split takes the splitter's first split, and the first split does not depend on how many "
                "the splitter would make (it draws them one after another from the seeded generator)")
EQUIVALENT: dict[str, str] = {
    "filmgenre.rules.x_apply_rule__mutmut_21": _FLOAT64 + " (the thresholds)",
    "filmgenre.rules.x_apply_rule__mutmut_23": _FLOAT64 + " (the thresholds)",
    "filmgenre.rules.x_apply_rule__mutmut_40": "argsort's default axis is the last: for films x genres, axis 1",
    "filmgenre.rules.x_apply_rule__mutmut_45": "NumPy reads a sort kind by its first letter, case-insensitively",
    "filmgenre.rules.x_middle_best__mutmut_3": _FLOAT64,
    "filmgenre.rules.x_middle_best__mutmut_5": _FLOAT64,
    "filmgenre.rules.x_choose_rule__mutmut_5": "float64 labels instead of int8 give the same 0/1 counts, hence F1",
    "filmgenre.rules.x_choose_rule__mutmut_9": "float32 probabilities compared with the float64 GRID are promoted "
                                               "to float64 anyway, and apply_rule converts them itself",
    "filmgenre.rules.x_choose_rule__mutmut_11": "float32 probabilities compared with the float64 GRID are promoted "
                                                "to float64 anyway, and apply_rule converts them itself",
    "filmgenre.rules.x_choose_rule__mutmut_53": "a genre without validation positives ends at the global threshold "
                                                "either way: weight 0 in shrunk_thresholds, and under min_positives "
                                                "(5) in the micro rule",
    "filmgenre.rules.x_f1_from_counts__mutmut_23": "a denominator of 1 means tp = 0: F1 is 0 either way",
    "filmgenre.uncertainty.x_resample_counts__mutmut_7": "integers(films) draws from [0, films) too",
    **{f"filmgenre.uncertainty.x_f1_scores__mutmut_{n}": "0/1 labels and predictions and integer counts give "
       "exact integer sums in any numeric dtype" for n in (3, 5, 8, 10, 13, 15)},
    **{f"filmgenre.uncertainty.x_average_precisions__mutmut_{n}": _EXACT for n in (2, 6, 8, 11, 13, 59, 89)},
    **{f"filmgenre.uncertainty.x_average_precisions__mutmut_{n}": "films of one tie group are summed as a group, "
       "so their order inside it (a stable sort or not) changes nothing" for n in (28, 30, 33)},
    "filmgenre.uncertainty.x_average_precisions__mutmut_45": "the last group's end only slices the sorted films, "
                                                             "and NumPy clamps a slice past the end",
    "filmgenre.uncertainty.x_average_precisions__mutmut_126": "a resample without a positive film of the genre "
                                                              "gives 0/0 = NaN either way",
    "filmgenre.uncertainty.x_top1_test__mutmut_25": "scipy's binomtest tests p = 0.5 by default",
    "filmgenre.uncertainty.x_top1_test__mutmut_28": "with as many films right for a only as for b only, the exact "
                                                    "test's p-value is 1, the value the mutant returns",
    "filmgenre.uncertainty.x_top1_test__mutmut_33": "astype(None) is float64",
    "filmgenre.uncertainty.x_top1_test__mutmut_55": "np.zeros_like(None) is a 0-d zero, which broadcasts like the "
                                                    "array of zeros",
    "filmgenre.dataset.x_make_split__mutmut_7": _FIRST_SPLIT,
    "filmgenre.dataset.x_make_split__mutmut_10": _FIRST_SPLIT,
    "filmgenre.dataset.x_make_split__mutmut_25": _FIRST_SPLIT,
    "filmgenre.dataset.x_make_split__mutmut_28": _FIRST_SPLIT,
    "filmgenre.dataset.x_ensure_split__mutmut_3": "splits.csv's columns, Ids (tt + digits) and train/val/test, "
                                                  "are read as strings whatever the dtype",
    "filmgenre.dataset.x_ensure_split__mutmut_5": "splits.csv's columns, Ids (tt + digits) and train/val/test, "
                                                  "are read as strings whatever the dtype",
    "filmgenre.files.x_write_text__mutmut_4": _LOCALE,
    "filmgenre.files.x_write_text__mutmut_6": _UTF8,
    "filmgenre.files.x_write_text__mutmut_10": _LOCALE,
    "filmgenre.files.x_write_text__mutmut_12": _LOCALE,
    "filmgenre.files.x_write_text__mutmut_14": _UTF8,
    "filmgenre.files.x_read_json__mutmut_5": _LOCALE,
    "filmgenre.files.x_read_json__mutmut_7": _UTF8,
    "filmgenre.files.x_write_json__mutmut_8": "sort_keys=None is false, as the default",
    "filmgenre.files.x_write_json__mutmut_12": "sort_keys=False is json.dumps's default",
    "filmgenre.files.x_write_csv__mutmut_2": "pandas writes no index for index=None (false)",
    "filmgenre.files.x_write_csv__mutmut_4": "pandas writes no index for index=None (false)",
    "filmgenre.files.x_sha256__mutmut_8": "read(None) reads the whole file at once: the same hash, more memory",
    "filmgenre.encoders.torchfile.x__rebuild_tensor__mutmut_1": "requires_grad is never read (numpy has no gradients)",
}


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
        if status not in CAUGHT:
            survivors[part].append(mutant)
    parts = {}
    for part in TARGETS:
        total, killed = sum(counts[part].values()), sum(counts[part][verdict] for verdict in CAUGHT)
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
        "command": "make mutants",
        "date": time.strftime("%Y-%m-%d"), "tool": f"mutmut {importlib.metadata.version('mutmut')}",
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
