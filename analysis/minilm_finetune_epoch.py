"""CPU seconds of one epoch fine-tuning MiniLM's top 2 blocks (+ a sigmoid head) on the full training split.

A cost measurement only (issue 21): no validation score. Batches of 32 overviews of similar
length, padded to a multiple of 16 tokens (few shapes to trace), Adam 2e-5.

    .venv/bin/python analysis/minilm_finetune_epoch.py
"""
import time

import keras
import numpy as np
import pandas as pd

from filmgenre import config
from filmgenre.encoders.minilm import OverviewEncoder
films = pd.read_csv(config.paths().processed / "films.csv", dtype={"Id": str}, keep_default_na=False)
train = films[films.split == "train"]
enc = OverviewEncoder()
for layer in enc.model.layers:
    layer.trainable = any(layer.name.startswith(f"block{b}") for b in (4, 5))
inp = enc.model.inputs
out = keras.layers.Dense(25, activation="sigmoid")(enc.model.output)
model = keras.Model(inp, out)
model.compile(keras.optimizers.Adam(2e-5), "binary_crossentropy")
texts, labels = train["Overview"].to_numpy(str), train[config.GENRES].to_numpy(np.float32)
order = np.argsort([len(t) for t in texts], kind="stable")
batches = [order[i:i + 32] for i in range(0, len(order), 32)]
np.random.default_rng(0).shuffle(batches)
trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
start, cpu = time.perf_counter(), time.process_time()
for i, rows in enumerate(batches):
    ids, mask = enc.tokens(texts[rows])
    pad = -ids.shape[1] % 16
    ids, mask = np.pad(ids, ((0, 0), (0, pad))), np.pad(mask, ((0, 0), (0, pad)))
    model.train_on_batch([ids, mask], labels[rows])
    if i % 20 == 0:
        print(i, len(batches), round(time.process_time() - cpu), flush=True)
print("EPOCH", len(rows), "films", len(texts), "trainable", trainable, "cpu_s", round(time.process_time() - cpu, 1),
      "wall_s", round(time.perf_counter() - start, 1), flush=True)
