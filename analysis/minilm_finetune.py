"""all-MiniLM-L6-v2's top two blocks fine-tuned for genres, early-stopped on validation (issue 21, point 2).

It starts from ``minilm_head`` (the registry's head, trained here with seed 42 on the frozen
encoder's vectors, into logs/minilm_finetune/): "epoch 0" is that head on the frozen encoder, so
each epoch shows what fine-tuning adds to it. Then blocks 4 and 5 of the six and the head train
together, Adam at ``--learning-rate`` (2e-5), on batches of 32 training overviews of similar length padded to a
multiple of 16 tokens (few shapes to trace), shuffled each epoch. After each epoch: its CPU
seconds, the validation loss and the validation micro- and macro-F1 under rules chosen on
validation (as `filmgenre evaluate`), written to results/minilm_finetune/lr<rate>/history.csv. Training
stops when the validation loss has not fallen for ``PATIENCE`` epoch, or after ``--epochs``; the
best epoch's weights then score the test films once (results/minilm_finetune/lr<rate>/summary.json).

Not in `make all`: an epoch costs about half the spec CNN's whole training. Not resumable: a
rerun starts afresh.

    .venv/bin/python analysis/minilm_finetune.py [--learning-rate 2e-5] [--epochs 5]
"""

import argparse
import time

import keras
import numpy as np
import pandas as pd

from filmgenre import artifacts, config, files, inputs, registry, train
from filmgenre.encoders.minilm import OverviewEncoder
from filmgenre.predictions import SPLITS, evaluation_films, quantise
from filmgenre.rules import apply_rule, choose_rule, macro_f1, micro_f1
from filmgenre.seeds import scores_under_rules

COMMAND = ".venv/bin/python analysis/minilm_finetune.py"
EPOCHS, PATIENCE, BATCH, LEARNING_RATE = 5, 1, 32, 2e-5  # defaults; --epochs, --learning-rate
TRAINED_BLOCKS = (4, 5)
OUT = config.paths().results / "minilm_finetune"  # a folder per learning rate below it
WORK = config.paths().logs / "minilm_finetune"


def token_batches(encoder: OverviewEncoder, overviews: np.ndarray, order: np.ndarray):
    """(rows, [token ids, mask]) in batches of ``BATCH`` along ``order``, padded to a multiple of 16 tokens."""
    for start in range(0, len(order), BATCH):
        rows = order[start:start + BATCH]
        ids, mask = encoder.tokens(overviews[rows])
        pad = ((0, 0), (0, -ids.shape[1] % 16))
        yield rows, [np.pad(ids, pad), np.pad(mask, pad)]


def fine_tunable(encoder: OverviewEncoder, head, learning_rate: float) -> keras.Model:
    """The encoder's layers with ``head`` on top, in one model: only the top blocks and the head train."""
    for layer in encoder.model.layers:
        layer.trainable = any(layer.name.startswith(f"block{block}_") for block in TRAINED_BLOCKS)
    model = keras.Model(encoder.model.inputs, head(encoder.model.output), name="minilm_finetune")
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy")
    return model


def probabilities(model, encoder: OverviewEncoder, overviews: np.ndarray) -> np.ndarray:
    """The model's probabilities of these overviews, in their order (shortest first, for less padding)."""
    result = np.zeros((len(overviews), len(config.GENRES)))
    for rows, batch in token_batches(encoder, overviews, np.argsort([len(t) for t in overviews], kind="stable")):
        result[rows] = np.asarray(model.predict_on_batch(batch))
    return quantise(result)


def validation_scores(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """Validation loss (the mean binary cross-entropy Keras minimises) and F1 under the rules chosen on validation."""
    clipped = np.clip(predicted, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
    scores = {"val_loss": round(loss, 5)}
    for objective, f1 in (("micro", micro_f1), ("macro", macro_f1)):
        rule, _ = choose_rule(predicted, labels, objective=objective)
        scores[f"val_f1_{objective}"] = round(f1(labels, apply_rule(predicted, rule)), 4)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    out = OUT / f"lr{args.learning_rate:g}"
    head_run = WORK / "head"
    if not registry.model_path("minilm_head", head_run).exists():
        train.train("minilm_head", seed=config.SEED, out=head_run, verbose=0)
    encoder = OverviewEncoder()
    model = fine_tunable(encoder, artifacts.load_model("minilm_head", registry.model_path("minilm_head", head_run)),
                         args.learning_rate)
    training = inputs.load(registry.MODELS["minilm_head"], "train")
    films = {split: evaluation_films(split) for split in SPLITS}
    labels = films["val"].labels.astype(np.int8)
    by_length = np.argsort([len(text) for text in training.overviews], kind="stable")
    best_weights = WORK / "best.weights.h5"
    history = [{"epoch": 0, "train_cpu_seconds": 0.0, **validation_scores(
        probabilities(model, encoder, films["val"].overviews), labels)}]
    print(history[-1], flush=True)
    model.save_weights(best_weights)
    for epoch in range(1, args.epochs + 1):
        cpu = time.process_time()
        batches = list(token_batches(encoder, training.overviews, by_length))
        for index in np.random.default_rng(config.SEED + epoch).permutation(len(batches)):
            rows, batch = batches[index]
            model.train_on_batch(batch, training.labels[rows])
        trained = time.process_time() - cpu
        history.append({"epoch": epoch, "train_cpu_seconds": round(trained, 1), **validation_scores(
            probabilities(model, encoder, films["val"].overviews), labels),
            "val_cpu_seconds": round(time.process_time() - cpu - trained, 1)})
        print(history[-1], flush=True)
        files.write_csv(out / "history.csv", pd.DataFrame(history))
        losses = [row["val_loss"] for row in history]
        if losses[-1] == min(losses):
            model.save_weights(best_weights)
        elif epoch - int(np.argmin(losses)) >= PATIENCE:
            break
    best = int(np.argmin([row["val_loss"] for row in history]))
    model.load_weights(best_weights)
    predicted = {split: probabilities(model, encoder, films[split].overviews) for split in SPLITS}
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    files.write_json(out / "summary.json", {
        "command": f"{COMMAND} --learning-rate {args.learning_rate:g} --epochs {args.epochs}",
        "epochs_cap": args.epochs, "patience": PATIENCE, "learning_rate": args.learning_rate,
        "trained_blocks": list(TRAINED_BLOCKS), "trainable_weights": trainable, "seed": config.SEED,
        "start": "minilm_head (seed 42) on the frozen encoder: epoch 0", "epochs_run": len(history) - 1,
        "best_epoch": best, "history": history,
        "train_cpu_seconds_per_epoch": [row["train_cpu_seconds"] for row in history[1:]],
        "note": "one seed; the best epoch by validation loss; test read once, at the best epoch",
        **scores_under_rules(predicted, films)})


if __name__ == "__main__":
    main()
