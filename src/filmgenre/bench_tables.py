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
