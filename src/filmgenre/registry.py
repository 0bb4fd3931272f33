"""The study's models, one entry each: the only list of them (the Makefile reads it too).

An entry says how to build the model (a function of ``models`` and its options), what it
reads (``inputs``: posters at a size, overviews, or a pretrained encoder's vectors) and its
training defaults. Adding a model on an existing input is one entry here: `make all` then
trains that model alone (``stamps``), evaluates it beside the others and reports it.

Nothing here imports Keras, so the Makefile (`python -m filmgenre.registry`), `--help` and the
report's helpers read the registry in milliseconds.
"""

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filmgenre import config


@dataclass(frozen=True)
class ModelSpec:
    """How ``train`` builds and feeds one model.

    ``build`` names a function of ``models``, called with ``options`` and with what the input
    needs (``inputs.build``). ``patience`` (epochs without a lower validation loss before
    early stopping) fits each model's committed curve (``results/<name>/history.csv``): at
    least the longest run of epochs it went without improving before its best epoch, so
    replaying that history stops at the same best epoch (``train.early_stopping`` replays
    it; a test checks it), but no longer, since every extra epoch is CPU time spent
    overfitting. ``threads_per_op`` (None: TensorFlow's default, every core) is set by
    `filmgenre train` before TensorFlow starts (``train.use_threads_per_op``). Models `make
    all` leaves to `make extras` are listed in ``config.EXTRA_MODELS``.
    """

    build: str
    reads: str  # "posters", "overviews", or an encoder's vectors: "poster_features", "overview_features", "poster_maps"
    epochs: int
    patience: int
    image_size: int = config.IMAGE_SIZE
    vocab_size: int = config.VOCAB_SIZE
    description: str = ""
    threads_per_op: int | None = None
    options: dict = field(default_factory=dict)

    def settings(self) -> dict:
        """What the trained weights depend on (the description does not): part of the build key."""
        return {key: value for key, value in asdict(self).items() if key != "description"}


MODELS: dict[str, ModelSpec] = {
    # Improves slowly to the end (best at epoch 35 of 40); after epoch 20 it went 4 epochs without
    # improving, so 5 is the least patience that reaches its best.
    "cnn": ModelSpec("spec_cnn", "posters", epochs=40, patience=5,
                     description="the assignment's poster CNN"),
    # Overfits soon after its best (epoch 8); it never waited more than 2 epochs to improve.
    # One thread per op: its two directions' step loops still run side by side, one per core,
    # without handing each small op's work between threads: less CPU and less wall time per
    # epoch, the same history (`train lstm --threads-per-op 0` vs 1).
    "lstm": ModelSpec("spec_lstm", "overviews", epochs=20, patience=2, threads_per_op=1,
                      description="the assignment's overview BiLSTM"),
    # ~40 % of the CPU time of the study for a macro-F1 below the spec CNN's: not in `make all`
    # (`make extras` trains it). Best at epoch 10, never more than 2 epochs without improving.
    "poster_cnn": ModelSpec("poster_cnn", "posters", epochs=40, patience=2, image_size=96,
                            description="ours: augmented, batch-normalised CNN, 96 px, global pooling"),
    # Best at epoch 10 of 15, never more than 2 epochs without improving.
    "glove_lstm": ModelSpec("glove_lstm", "overviews", epochs=30, patience=2, vocab_size=20_000,
                            description="ours: BiLSTM(64) over GloVe 6B 50-d vectors"),
    "effnet_head": ModelSpec("encoder_head", "poster_features", epochs=200, patience=10,
                             options={"name": "effnet_head"},
                             description="ours: dense head (256) on pretrained EfficientNet-Lite0 features"),
    # Better on validation micro-F1 than effnet_head (0.560 against 0.545) but worse on macro-F1
    # (0.263 against 0.289 on test), for 487 CPU seconds of training (best epoch 36 of 40, on 2
    # cores): close to the spec CNN's whole run, so `make extras` trains it, `make all` does not.
    "effnet_finetune": ModelSpec("effnet_finetune", "poster_maps", epochs=40, patience=5,
                                 description="ours: EfficientNet-Lite0's top block fine-tuned, dense head (256)"),
    "minilm_head": ModelSpec("encoder_head", "overview_features", epochs=200, patience=10,
                             options={"name": "minilm_head"},
                             description="ours: dense head (256) on pretrained all-MiniLM-L6-v2 embeddings"),
    # Learned fusions of both frozen encoders' vectors (side by side), beside the late fusion of
    # two heads' probabilities (``fusion``): a gated multimodal unit, and a dense head on the
    # concatenation.
    "gmu": ModelSpec("gated_fusion", "poster_features+overview_features", epochs=200, patience=10,
                     description="ours: gated multimodal unit (256) on EfficientNet-Lite0 and MiniLM vectors"),
    "concat_fusion": ModelSpec("encoder_head", "poster_features+overview_features", epochs=200, patience=10,
                               options={"name": "concat_fusion"},
                               description="ours: dense head (256) on EfficientNet-Lite0 and MiniLM vectors side by side"),
}


class UnknownModel(KeyError):
    """A name that is not (or no longer) in ``MODELS``."""


def spec(name: str) -> ModelSpec:
    """The entry of a model or of a run of it (``cnn``, or ``cnn-limit200`` for a smoke run)."""
    base = name.split("-limit")[0]
    if base not in MODELS:
        raise UnknownModel(name)
    return MODELS[base]


def make_all_models() -> list[str]:
    """The models `make all` trains (the Makefile reads them from here)."""
    return [name for name in MODELS if name not in config.EXTRA_MODELS]


def model_file(name: str) -> str:
    """The trained model's (or run's) file relative to the project root: its key in ``metrics.json``'s provenance."""
    return f"models/{name}.keras"


def model_path(name: str, root: Path | None = None) -> Path:
    """Where the trained model (or run) ``name`` is saved, below ``root`` (default: the project)."""
    return (config.paths().root if root is None else Path(root)) / model_file(name)


def trained_models() -> list[str]:
    """The registry's models that have a saved model, in registry order (smoke runs left out)."""
    return [name for name in MODELS if model_path(name).exists()]


def make_prerequisites(spec: ModelSpec) -> list[str]:
    """The Makefile targets that make the model's input: the posters prepared at its size (the
    films table comes with every size), or the stamps of its encoders' caches ("+" joins several)."""
    if spec.reads in ("posters", "overviews"):
        return [f"data/processed/manifest_{spec.image_size}.json"]
    return [f"data/processed/{reads}.encoded" for reads in spec.reads.split("+")]


def main(argv: list[str]) -> int:
    """`python -m filmgenre.registry make-all|extras|all`: model names for the Makefile, one line;
    `... inputs NAME...`: ``NAME:prerequisite`` pairs (one per prerequisite), what each model's training needs first."""
    lists = {"make-all": make_all_models, "extras": lambda: list(config.EXTRA_MODELS), "all": lambda: list(MODELS)}
    if argv[:1] == ["inputs"] and all(name in MODELS for name in argv[1:]):
        print(" ".join(f"{name}:{target}" for name in argv[1:] for target in make_prerequisites(MODELS[name])))
        return 0
    if len(argv) != 1 or argv[0] not in lists:
        print(f"usage: python -m filmgenre.registry {{{'|'.join(lists)}}} | inputs NAME...", file=sys.stderr)
        return 2
    print(" ".join(lists[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
