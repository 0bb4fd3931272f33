"""Files the study reads back, checked before use: a bad one stops the stage with one line that
names the file and the command that rebuilds it (``ArtifactError``), never a traceback.

Encoder caches are checked where they are read (``encoders.cache.check_cache``: a bad one is
re-encoded), predictions in ``predictions.read_predictions``, every JSON file in ``files.read_json``
(whose ``ArtifactError`` this module raises too); here the model files and the entries of
``metrics.json``.
"""

import zipfile
from pathlib import Path

from filmgenre import config, registry
from filmgenre.files import ArtifactError, read_json, relative  # the stages name them as artifacts.*

# evaluate reads the file it rewrites (earlier entries stay), so a damaged one must go before it runs.
METRICS_FIX = ("Restore the committed one (`git checkout results/metrics.json`), or delete it and rerun "
               "`filmgenre evaluate` (or `make all`).")
SEEDS_FIX = "Restore the committed one (`git checkout results/seeds.json`) or delete it and rerun `filmgenre seeds`."
ENTRY_KEYS = ("kind", "reads", "rule", "val", "test")
KINDS = ("model", "baseline", "derived")


def load_model(name: str, path: Path | None = None):
    """The saved model ``models/<name>.keras`` (or ``path``), loaded with Keras ``safe_mode`` (no code
    from the file runs) and checked to output one probability per genre."""
    import keras

    from filmgenre import models  # registers the custom layers and loss that model files name

    path = registry.model_path(name) if path is None else Path(path)
    fix = f"Retrain it: `filmgenre train {name.split('-limit')[0]}` (or `make all`)."
    if not path.exists():
        raise ArtifactError(f"{relative(path)}: not found. {fix}")
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{relative(path)}: not a Keras model file (not a zip archive: truncated or overwritten). {fix}")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many kinds (ValueError, KeyError, OSError, ...) for a bad archive
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise ArtifactError(f"{relative(path)}: not a readable Keras model ({reason}). {fix}") from None
    if tuple(model.output_shape[1:]) != (models.N_GENRES,):
        raise ArtifactError(f"{relative(path)}: outputs {model.output_shape[1:]}, not one probability for each of "
                            f"the {len(config.GENRES)} genres. {fix}")
    return model


def read_metrics(required: bool = False) -> dict:
    """``results/metrics.json`` checked: an object whose ``models`` maps each name to an entry with
    its kind, input, decision rule and validation and test scores. Absent: ``{}`` (or, when
    ``required``, an error saying which stage writes it)."""
    path = config.paths().metrics
    metrics = read_json(path, METRICS_FIX)
    if metrics is None:
        if required:
            raise ArtifactError(f"{relative(path)}: not found. Run `filmgenre evaluate` (or `make all`).")
        return {}
    models = metrics.get("models", {})
    if not isinstance(models, dict):
        raise ArtifactError(f"{relative(path)}: 'models' is not an object. {METRICS_FIX}")
    for name, entry in models.items():
        missing = [key for key in ENTRY_KEYS if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise ArtifactError(f"{relative(path)}: entry {name!r} has no {missing[0]!r}. {METRICS_FIX}")
        if entry["kind"] not in KINDS:
            raise ArtifactError(f"{relative(path)}: entry {name!r} is of unknown kind {entry['kind']!r}. {METRICS_FIX}")
        if not all(isinstance(entry[split], dict) and isinstance(entry[split].get("f1_micro"), (int, float))
                   for split in ("val", "test")):
            raise ArtifactError(f"{relative(path)}: entry {name!r} has no val/test scores. {METRICS_FIX}")
    return metrics
