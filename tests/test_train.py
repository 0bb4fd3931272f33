import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import noisy_test_split
from filmgenre import artifacts, config, models, registry, train


def test_learning_rate_schedule_is_the_assignments():
    rates = [train.learning_rate_schedule(epoch, None, 1e-3) for epoch in range(13)]
    assert rates[:10] == [1e-3] * 10
    assert rates[10] == pytest.approx(1e-3 * math.exp(-0.01))
    assert rates[12] == pytest.approx(1e-3 * math.exp(-0.03))


def test_positive_weights_are_each_genres_negatives_over_positives_capped():
    labels = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]] * 10)
    assert models.positive_weights(labels) == [1.0, 3.0, 1.0]  # 30 vs 10 negatives; the empty genre 1
    assert models.positive_weights(np.eye(50)[:, :2]) == [models.CLASS_WEIGHT_CAP] * 2


def test_an_interrupted_run_resumes_where_it_stopped_and_writes_its_artifacts(trainable, monkeypatch):
    """One smoke run (class weights on) interrupted in its second epoch, then rerun: what the
    rerun writes is checked as any run's artifacts (one training paid for both checks)."""
    class InterruptInSecondEpoch(train.EpochTimer):
        def on_train_batch_end(self, batch, logs=None):
            if len(self.seconds) == 1 and batch == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(train, "EpochTimer", InterruptInSecondEpoch)
    with pytest.raises(KeyboardInterrupt):
        train.train("cnn", epochs=3, limit=96, class_weight=True, verbose=0)
    results = trainable / "results" / "cnn-limit96"
    assert not results.exists()  # nothing half-written
    assert (trainable / "logs" / "cnn-limit96" / "backup").exists()

    monkeypatch.undo()  # the rerun is an ordinary one
    monkeypatch.setattr(config, "ROOT", trainable)
    summary = train.train("cnn", epochs=3, limit=96, class_weight=True, verbose=0)
    assert not (trainable / "logs" / "cnn-limit96" / "backup").exists()
    history = pd.read_csv(results / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2]
    assert {"loss", "val_loss", "precision", "val_recall", "learning_rate"} <= set(history.columns)
    recorded = json.loads((results / "train.json").read_text())
    assert recorded == json.loads(json.dumps(summary))
    assert recorded["parameters"] == 3_464_601 and recorded["epochs_run"] == 3
    assert recorded["best_epoch"] == int(history["val_loss"].idxmin()) + 1
    assert recorded["settings"]["seed"] == config.SEED and "tensorflow" in recorded["versions"]
    # only epochs 2 and 3 ran after the restart
    assert len(recorded["seconds_per_epoch_all"]) == 2 and len(recorded["cpu_seconds_per_epoch_all"]) == 2
    assert all(s > 0 for s in recorded["cpu_seconds_per_epoch_all"])
    assert recorded["cpu_seconds_total"] >= sum(recorded["cpu_seconds_per_epoch_all"]) - 0.1
    assert recorded["seconds_total"] >= sum(recorded["seconds_per_epoch_all"]) - 0.1
    assert recorded["settings"]["class_weight"] is True
    model = artifacts.load_model("cnn", trainable / "models" / "cnn-limit96.keras")
    assert model.output_shape == (None, 25)
    assert isinstance(model.loss, models.WeightedBinaryCrossentropy) and max(model.loss.positive_weights) > 1
    assert not (trainable / "results" / "cnn").exists()  # a smoke run never touches the full run's results


def test_same_seed_and_noise_for_test_films_give_identical_histories(trainable, trained_tiny):
    # The same films, seed and epochs as the session's trained_tiny project, in another project
    # whose test films are noise (labels, overviews, posters): the CNN (dropout, shuffled
    # batches) must retrain to the same history, early stopping's val_loss included, since
    # training never reads the test split. (The CNN: an LSTM's first epoch costs three times
    # more; the input pipeline and its splits are the same code; the LSTM's vocabulary is
    # test_features'.)
    noisy_test_split(trainable)
    summary = train.train("cnn", epochs=1, verbose=0)
    pd.testing.assert_frame_equal(pd.read_csv(trainable / "results" / "cnn" / "history.csv"),
                                  pd.read_csv(trained_tiny / "results" / "cnn" / "history.csv"))
    committed = json.loads((trained_tiny / "results" / "cnn" / "train.json").read_text())
    assert (summary["best_epoch"], summary["best_val_loss"]) == (committed["best_epoch"], committed["best_val_loss"])


def test_cli_trains_with_a_mirrored_strategy_and_one_thread_per_op_and_out_sends_every_artifact_elsewhere(
        trainable, tmp_path):
    environment = {**os.environ, "FILMGENRE_ROOT": str(trainable)}
    elsewhere = tmp_path / "elsewhere"
    command = [sys.executable, "-m", "filmgenre.cli", "train", "cnn", "--epochs", "1", "--limit", "128",
               "--strategy", "mirrored", "--threads-per-op", "1", "--out", str(elsewhere)]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    recorded = json.loads((elsewhere / "results" / "cnn-limit128" / "train.json").read_text())
    assert recorded["settings"]["strategy"] == "mirrored" and recorded["epochs_run"] == 1
    assert recorded["settings"]["threads_per_op"] == 1  # TensorFlow's own reading, not the flag echoed
    assert (elsewhere / "models" / "cnn-limit128.keras").exists()
    assert not (trainable / "results" / "cnn-limit128").exists() and not (trainable / "models").exists()


@pytest.mark.parametrize("name", ["poster_cnn", "glove_lstm"])
def test_our_models_train_on_a_tiny_dataset(trainable, trainable_zip, name):
    from filmgenre import dataset

    dataset.prepare(trainable_zip, image_size=registry.MODELS[name].image_size, progress=False, log=lambda *_: None)
    summary = train.train(name, epochs=2, limit=96, verbose=0)
    assert summary["epochs_run"] == 2 and summary["model"] == name
    assert (trainable / "models" / f"{name}-limit96.keras").exists()



@pytest.mark.parametrize("name, reads, width", [("effnet_head", "poster_features", 1280),
                                               ("minilm_head", "overview_features", 384)])
def test_encoder_heads_train_on_cached_vectors(prepared, name, reads, width):
    """On the 48 films of ``prepared`` (the encoders run on every film, whatever the limit)."""
    import numpy as np

    from filmgenre import inputs
    from filmgenre.encoders import cache

    summary = train.train(name, epochs=2, limit=24, verbose=0)
    assert summary["epochs_run"] == 2 and summary["training_films"] == 24
    assert cache.cache_path(cache.ENCODERS[reads]).exists()  # encoded once, cached
    films = inputs.load(registry.MODELS[name], "train", limit=24)
    assert films.embeddings.shape == (24, width) and films.embeddings.dtype == np.float32
    model = artifacts.load_model(name, prepared / "models" / f"{name}-limit24.keras")
    assert model.input_shape == (None, width) and model.output_shape == (None, 25)
    # the saved model carries the standardisation adapted on the training vectors
    np.testing.assert_allclose(np.asarray(model.get_layer("Standardise").mean).ravel(),
                               films.embeddings.mean(axis=0), rtol=1e-3, atol=1e-3)


def test_effnet_finetune_moves_the_top_block_but_not_its_batchnorm_statistics(prepared):
    import numpy as np

    from filmgenre.encoders.efficientnet import poster_trunk_and_top

    train.train("effnet_finetune", epochs=1, limit=24, verbose=0)  # the trunk encodes all 48 films
    model = artifacts.load_model("effnet_finetune", prepared / "models" / "effnet_finetune-limit24.keras")
    assert model.input_shape == (None, 7, 7, 192) and model.output_shape == (None, 25)
    _, pretrained_top = poster_trunk_and_top()
    tuned_top = model.get_layer("efficientnet_lite0_top")
    conv = [(tuned_top.get_layer(n).get_weights()[0], pretrained_top.get_layer(n).get_weights()[0])
            for n in ("block15_expand", "head")]
    assert all(not np.allclose(tuned, start) for tuned, start in conv)  # fine-tuned
    assert all(np.abs(tuned - start).max() < 0.05 for tuned, start in conv)  # a little: low learning rate
    for name in ("block15_expand_bn", "head_bn"):
        np.testing.assert_array_equal(tuned_top.get_layer(name).moving_mean, pretrained_top.get_layer(name).moving_mean)


def test_progress_line_says_epoch_elapsed_and_an_upper_bound_of_what_remains():
    line = train.progress_line("cnn", 7, 40, 41.0, [5.0, 6.0, 5.5])
    assert line == "train cnn: epoch 7/40, 41 s elapsed, ~3 min left (at most; early stopping may end sooner)"
    assert train.progress_line("lstm", 20, 20, 4000.0, [200.0]) == "train lstm: epoch 20/20, 1 h 06 min elapsed"


def test_progress_callback_prints_one_line_per_epoch():
    printed = []
    timer = train.EpochTimer()
    progress = train.Progress("cnn", 3, timer, print_line=lambda line, flush: printed.append(line))
    progress.on_train_begin()
    for epoch in range(2):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch)
        progress.on_epoch_end(epoch)
    assert [line.split(",")[0] for line in printed] == ["train cnn: epoch 1/3", "train cnn: epoch 2/3"]
    assert "left" in printed[0] and len(timer.cpu_seconds) == 2


def test_early_stopping_replays_keras():
    losses = [0.5, 0.4, 0.45, 0.41, 0.39, 0.42, 0.43, 0.44]
    assert train.early_stopping(losses, patience=2, epochs=8) == (4, 2)  # 0.45, 0.41: two without a new low
    assert train.early_stopping(losses, patience=3, epochs=8) == (8, 5)
    assert train.early_stopping(losses, patience=9, epochs=6) == (6, 5)


@pytest.mark.parametrize("name", ["cnn", "lstm", "glove_lstm", "effnet_head", "minilm_head"])
def test_early_stopping_replays_the_committed_runs(name):
    """Replayed on a committed full run's history, the patience it ran with stops where Keras
    did (so ``early_stopping`` can choose a patience from a curve without retraining)."""
    committed = json.loads((config.ROOT / "results" / name / "train.json").read_text())
    losses = pd.read_csv(config.ROOT / "results" / name / "history.csv")["val_loss"]
    settings = committed["settings"]
    assert train.early_stopping(losses, settings["patience"], settings["epochs"]) == (
        committed["epochs_run"], committed["best_epoch"])


def test_a_run_is_dirty_only_when_its_code_has_uncommitted_changes(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "src").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "src" / "model.py").write_text("units = 8\n")
    (tmp_path / "results" / "bench.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "code and results")
    clean = train.git_commit(tmp_path)
    assert clean and "+" not in clean
    (tmp_path / "results" / "bench.json").write_text('{"train": {}}\n')  # a stage rewrote its results
    assert train.git_commit(tmp_path) == clean
    (tmp_path / "src" / "model.py").write_text("units = 16\n")
    assert train.git_commit(tmp_path) == clean + "+dirty"
