"""The learned fusions' settings, chosen on validation films only (issue 21): results/fusion_grid.csv.

Each variant is a registry entry with other options (hidden units, dropout, learning rate, loss)
or trained with `train --class-weight`; it trains with the project's callbacks (`train.train`,
into logs/grid/, never over a committed run) and its validation probabilities get both decision
rules, as `filmgenre evaluate` chooses them. The test films are never read. Resumable: variants
already in the table are skipped.

    .venv/bin/python analysis/fusion_grid.py [--seeds 42 1 2] [--only NAME ...]
"""

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from filmgenre import config, evaluate, files, registry, train
from filmgenre.predictions import evaluation_films, quantise
from filmgenre.rules import apply_rule, choose_rule, describe_rule, macro_f1, micro_f1

FOCAL = "binary_focal_crossentropy"
# name: (registry entry it varies, options changed, trained with class weights)
VARIANTS = {  # in the order they ran
    **{f"gmu_h256_d{d}": ("gmu", {"hidden": 256, "dropout": d / 10}, False) for d in (4, 5, 6)},
    **{f"concat_h{h}_d{d}": ("concat_fusion", {"hidden": h, "dropout": d / 10}, False)
       for h, d in ((256, 6), (512, 6), (256, 7))},
    "gmu_h512_d5": ("gmu", {"hidden": 512, "dropout": 0.5}, False),
    # the losses for rare genres, one change at a time from the registry's settings
    "gmu_h256_d6_focal": ("gmu", {"hidden": 256, "dropout": 0.6, "loss": FOCAL}, False),
    "gmu_h256_d6_class_weight": ("gmu", {"hidden": 256, "dropout": 0.6}, True),
    "concat_h256_d6_focal": ("concat_fusion", {"hidden": 256, "dropout": 0.6, "loss": FOCAL}, False),
    "concat_h256_d6_class_weight": ("concat_fusion", {"hidden": 256, "dropout": 0.6}, True),
}
TABLE = config.paths().results / "fusion_grid.csv"


def score(name: str, seed: int, base: str, options: dict, class_weight: bool, val) -> dict:
    registry.MODELS[name] = dataclasses.replace(registry.MODELS[base], options=registry.MODELS[base].options | options)
    folder = config.paths().logs / "grid" / f"{name}-seed{seed}"
    started = time.process_time()
    summary = train.train(name, seed=seed, out=folder, class_weight=class_weight, verbose=0)
    probabilities = quantise(evaluate.predict_model(name, [val], path=registry.model_path(name, folder))[0])
    labels = val.labels.astype(np.int8)
    row = {"variant": name, "model": base, "seed": seed, "class_weight": class_weight,
           **{k: options.get(k, "") for k in ("hidden", "dropout", "learning_rate", "loss")},
           "best_epoch": summary["best_epoch"], "best_val_loss": round(summary["best_val_loss"], 4),
           "cpu_seconds": round(time.process_time() - started, 1)}
    for objective, f1 in (("micro", micro_f1), ("macro", macro_f1)):
        rule, _ = choose_rule(probabilities, labels, objective=objective)
        row[f"val_{objective}_rule"] = describe_rule(rule)
        row[f"val_f1_{objective}"] = round(f1(labels, apply_rule(probabilities, rule)), 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[config.SEED])
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), metavar="NAME")
    args = parser.parse_args()
    val = evaluation_films("val")
    rows = pd.read_csv(TABLE, keep_default_na=False).to_dict("records") if TABLE.exists() else []
    for name in args.only or VARIANTS:
        for seed in args.seeds:
            if any(row["variant"] == name and row["seed"] == seed for row in rows):
                continue
            rows.append(score(name, seed, *VARIANTS[name], val))
            print(rows[-1], flush=True)
            files.write_csv(TABLE, pd.DataFrame(rows))


if __name__ == "__main__":
    main()
