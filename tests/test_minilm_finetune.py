"""analysis/minilm_finetune.py (issue 21, point 2): fine-tuning moves MiniLM's top blocks and the
head, and leaves the frozen blocks and the embeddings exactly as they were."""

import importlib.util
from pathlib import Path

import keras
import numpy as np

from filmgenre import config
from filmgenre.encoders import minilm

SCRIPT = Path(__file__).resolve().parents[1] / "analysis" / "minilm_finetune.py"


def load_script():
    spec = importlib.util.spec_from_file_location("minilm_finetune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_step_moves_the_top_blocks_and_the_head_and_nothing_below_them():
    finetune = load_script()
    encoder = minilm.OverviewEncoder()
    head = keras.Sequential([keras.Input((384,)), keras.layers.Dense(len(config.GENRES), activation="sigmoid",
                                                                     name="genres")], name="head")
    model = finetune.fine_tunable(encoder, head, learning_rate=1e-3)
    overviews = np.array(["A detective hunts a killer through a rainy city.",
                          "Two friends drive across the country to a wedding.",
                          "A family moves into a house where something waits.",
                          "A young woman joins a band and falls in love."])
    labels = np.eye(len(config.GENRES), dtype=np.float32)[[0, 3, 7, 11]]
    before = [np.array(weight) for weight in model.weights]
    _, batch = next(finetune.token_batches(encoder, overviews, np.arange(len(overviews))))
    model.train_on_batch(batch, labels)

    trained_layers = [f"block{block}_" for block in finetune.TRAINED_BLOCKS]
    moved, kept = set(), set()
    for weight, old in zip(model.weights, before):
        (moved if not np.array_equal(old, np.array(weight)) else kept).add(weight.path)
    should_move = {w.path for w in model.weights if w.path.startswith((*trained_layers, "head/", "genres/"))}
    assert should_move and {w.path for w in model.weights if w.path.startswith("block0_")}
    assert moved == should_move, (sorted(moved - should_move), sorted(should_move - moved))
    assert kept == {w.path for w in model.weights} - should_move
