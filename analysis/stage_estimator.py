"""How far `filmgenre bench --stages` (without ``--full``) is from a full training, replayed on the
committed full runs: each model's ``train.json`` gives its CPU seconds per epoch, so the probe's
estimate (its first ``PROBE_EPOCHS`` epochs, then their steady epoch x the epochs left) is computed
on the same run it estimates (``stagecpu.replayed_estimate``), with no training. Writes
results/stage_estimator.csv and prints it.

    .venv/bin/python analysis/stage_estimator.py
"""

import pandas as pd

from filmgenre import config, files, registry
from filmgenre.bench import stagecpu


def main() -> pd.DataFrame:
    rows = []
    for name in registry.MODELS:
        summary = files.read_json(config.paths().results / name / "train.json")
        if "cpu_seconds_per_epoch_all" not in (summary or {}):  # not trained here (a baseline, or not yet)
            continue
        estimate = stagecpu.replayed_estimate(summary)
        rows.append({"model": name, "epochs": len(summary["cpu_seconds_per_epoch_all"]),
                     "cpu_seconds": summary["cpu_seconds_total"], "estimate": round(estimate, 1),
                     "error": round(estimate / summary["cpu_seconds_total"] - 1, 3)})
    table = pd.DataFrame(rows)
    total = table[["cpu_seconds", "estimate"]].sum()
    table.loc[len(table)] = {"model": "all", "epochs": table["epochs"].sum(), "cpu_seconds": total["cpu_seconds"],
                             "estimate": round(total["estimate"], 1),
                             "error": round(total["estimate"] / total["cpu_seconds"] - 1, 3)}
    files.write_csv(config.paths().results / "stage_estimator.csv", table)
    return table


if __name__ == "__main__":
    print(main().to_string(index=False))
