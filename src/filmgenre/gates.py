"""How much each genre's decision leans on the poster: a gated fusion's gate, per genre, on test films.

The gate of ``models.gated_fusion`` (one value in [0, 1] per film and hidden unit) weighs the
poster branch against the text branch: 1 takes the poster alone, 0 the overview alone. For each
genre, its mean over the test films of that genre (and over the hidden units), and the share of
units leaning on the poster (z > 0.5: the measure of Arevalo et al. 2017, Fig. 5), go to
``results/<model>/gate_per_genre.csv``; `filmgenre evaluate` writes it beside the model's other
test tables, and the report reads it (``read_table``).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from filmgenre import FilmgenreError, config, files, registry
from filmgenre.dataset import Films

GATED_BUILDS = ("gated_fusion",)  # the build functions of ``models`` whose model has a "Gate" layer
COLUMNS = ["genre", "films", "mean_gate", "poster_units"]


def is_gated(name: str) -> bool:
    return registry.spec(name).build in GATED_BUILDS


def table_path(name: str) -> Path:
    return config.paths().results / name / "gate_per_genre.csv"


def gate_values(model, vectors: np.ndarray) -> np.ndarray:
    """The gate (films x hidden units) the model computes for these input vectors, dropout off."""
    import keras

    return np.asarray(keras.Model(model.input, model.get_layer("Gate").output).predict(vectors, verbose=0))


def per_genre(gates: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per genre: its films, the gate's mean over them and their units, and the share of their
    units with z > 0.5. A genre without films gets empty values (it says nothing either way)."""
    labels = np.asarray(labels).astype(bool)
    rows = []
    for genre, films in zip(config.GENRES, labels.T):
        chosen = gates[films]
        rows.append({"genre": genre, "films": int(films.sum()),
                     "mean_gate": float(chosen.mean()) if films.any() else np.nan,
                     "poster_units": float((chosen > 0.5).mean()) if films.any() else np.nan})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_table(name: str, films: Films) -> pd.DataFrame:
    """The gate table of trained model ``name`` on ``films`` (the test films), written atomically."""
    from filmgenre import artifacts, inputs

    spec = registry.spec(name)
    vectors = inputs.with_input(spec, films).embeddings
    table = per_genre(gate_values(artifacts.load_model(name), vectors), films.labels)
    files.write_csv(table_path(name), table, float_format="%.4f")
    return table


def read_table(name: str) -> pd.DataFrame:
    """``results/<name>/gate_per_genre.csv``, checked: its columns and gates in [0, 1]."""
    path = table_path(name)
    fix = f"Run `filmgenre evaluate {name}` (or `make all`)."
    if not path.exists():
        raise FilmgenreError(f"{path}: not found. {fix}")
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])  # "N/A" is a genre
    gates = table[["mean_gate", "poster_units"]] if set(COLUMNS) <= set(table.columns) else None
    sound = (gates is not None and table["genre"].tolist() == config.GENRES
             and all(pd.api.types.is_float_dtype(gates[column]) for column in gates)
             and (gates.isna() | ((gates >= 0) & (gates <= 1))).all().all())
    if not sound:
        raise FilmgenreError(f"{path}: not a gate table ({', '.join(COLUMNS)}; one row per genre; gates in [0, 1]). {fix}")
    return table
