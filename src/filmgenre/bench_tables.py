"""What the documents read of ``results/bench.json`` (written by `filmgenre bench`): every measured
figure as one table, and what the GPU's usual tools did on this CPU. Apart from ``tables`` because
the benchmark lives apart from the study's core."""

from statistics import median

import pandas as pd

from filmgenre.tables import bench


def cpu_speedups() -> dict:
    """What the GPU's usual tools did on this CPU (``bench.json``): bfloat16 mixed precision's CPU
    seconds per spec-CNN epoch as a share of float32's (median of the idle runs' later epochs), the
    test micro-F1 of the two full runs, and XLA's CPU seconds per epoch as a multiple of the trained
    setting's; None for a section never measured."""
    measured = bench()
    found = {"bfloat16_share": None, "bfloat16_micro_f1": None, "float32_micro_f1": None, "xla_multiple": None}
    if "mixed_precision_cpu" in measured:
        precision = measured["mixed_precision_cpu"]
        idle = {policy: float(median(epochs[1:]))
                for policy, epochs in precision["idle_4_epoch_cpu_seconds_per_epoch"].items()}
        found |= {"bfloat16_share": idle["mixed_bfloat16"] / idle["float32"],
                  "bfloat16_micro_f1": precision["rows"]["mixed_bfloat16"]["test_micro_f1"],
                  "float32_micro_f1": precision["rows"]["float32"]["test_micro_f1"]}
    epoch = {row["variant"]: row["median"] for row in measured.get("xla", {}).get("rows", []) if row["model"] == "cnn"}
    if {"xla", "as_trained"} <= set(epoch):
        found["xla_multiple"] = epoch["xla"] / epoch["as_trained"]
    return found


def whole_study() -> str:
    """What the whole study costs, in words: `make all` timed end to end in a fresh clone (dated by
    its commit), and the CPU seconds of its stages side by side with an older commit's."""
    measured = bench()
    whole, stages = measured.get("make_all"), measured.get("stages", {})
    parts = []
    if whole:
        rows = whole["rows"]
        parts.append(f"make all in a fresh clone at {whole['git_commit'][:7]} took {rows['wall_time']['median']:.1f} min "
                     f"with a peak of {rows['peak_rss']['median']:,.0f} MiB (goal: {whole['goal_minutes']:.0f} min, "
                     f"{whole['goal_peak_rss_mib']:,.0f} MiB), after {rows['install']['median']:.1f} min of installing")
    else:
        parts.append("make all has not been timed end to end yet (`filmgenre bench --make-all`)")
    totals = stages.get("totals", {})
    if "ratio_all_stages_new_to_old" in totals:
        new, old = (stages["commits"][stages[side]][:7] for side in ("new", "old"))
        parts.append(f"at {new} its stages took {totals['new_cpu_seconds_all_stages']:,.0f} CPU s, "
                     f"{totals['ratio_all_stages_new_to_old']:.3f} × those of {old} "
                     f"(`filmgenre bench --stages {stages['old']} --full`)")
    return "; ".join(parts)


def bench_rows() -> pd.DataFrame:
    """Every measured figure of results/bench.json, one row each (median of the runs)."""
    rows = []

    def add(section, figure, median, unit, runs):
        rows.append({"section": section, "figure": figure, "median": median, "unit": unit, "runs": runs})

    for section, content in bench().items():
        if section == "prepare":
            for size, entry in content.items():
                add(section, f"decode + resize all posters, {size}", entry["decode_resize_seconds"], "s", 1)
        elif section == "train":
            for model, entry in content.items():
                add(section, f"{model}, full run", entry["seconds_per_epoch"], "s/epoch (median)", entry["epochs_run"])
        elif section == "stages":  # CPU seconds of each make-all stage, per commit
            for commit, stages in content["rows"].items():
                for row in stages:
                    add(section, f"{commit}: {row['stage']} ({row['how']})", row["cpu_seconds"], "CPU s", 1)
        elif section == "encode":  # one full pass of each encoder over every film
            for name, entry in content.items():
                add(section, f"{name}, {entry['films']:,} films", entry["cpu_seconds"], "CPU s", 1)
        elif section == "poster_encoders":  # each EfficientNet-Lite's encoding cost
            for name, entry in content.items():
                if isinstance(entry, dict):
                    add(section, f"{name}: encode every poster", entry["encode_cpu_seconds"], "CPU s", 1)
        elif section == "mutants":
            add(section, f"mutants caught of {content['mutants']:,}", content["score"], "share", 1)
        elif section == "mixed_precision_cpu":  # full spec-CNN runs, float32 and bfloat16
            for policy, row in content["rows"].items():
                add(section, f"cnn, {policy}, full run", row["cpu_seconds_per_epoch"], "CPU s/epoch", row["epochs_run"])
        elif section == "sentence_encoder":  # one encoding of the films, per runtime
            for name, row in content["rows"].items():
                add(section, f"{name}: encode", row["cpu_seconds"], "CPU s", 1)
        elif isinstance(content.get("rows"), list):  # variants, measured or not (e.g. "no GPU")
            for row in content["rows"]:
                variant = ", ".join(f"{k}={v}" for k, v in row.items()
                                    if k in {"model", "variant", "mixed_precision", "xla"})
                if "median" in row:
                    add(section, variant, row["median"], row["unit"], len(row["runs"]))
                else:
                    add(section, variant, None, row.get("status", ""), 0)
        else:
            for name, row in content.get("rows", {}).items():
                if "median" in row:
                    add(section, name, row["median"], row["unit"], len(row.get("runs", [])))
                else:
                    add(section, name, None, row.get("status", ""), 0)
    return pd.DataFrame(rows)
