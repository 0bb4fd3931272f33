"""What each `filmgenre` subcommand does, given its parsed arguments (``cli`` builds the parser).

Each is a thin shell over one module's function, so the tests and the Quarto documents call
the same code as the command line. Modules are imported inside each command: a command pays
only for what it runs (the report and `--help` never load TensorFlow).
"""

import os
from pathlib import Path

from filmgenre import FilmgenreError, config


def known_models(names: list[str] | None) -> list[str] | None:
    """``names`` (None: the command's default), each checked against ``registry.MODELS``."""
    from filmgenre.registry import MODELS

    for name in names or ():
        if name not in MODELS:
            raise FilmgenreError(f"unknown model {name!r}: choose from {', '.join(MODELS)}")
    return names


def prepare(args) -> None:
    from filmgenre import dataset

    dataset.prepare(Path(args.source), image_size=args.image_size, progress=not args.quiet)


def vocab(args) -> None:
    from filmgenre import features

    vocabulary = features.train_vocabulary(max_tokens=args.size)
    print(f"{len(vocabulary)} tokens; the first {args.first}:")
    print(" ".join(vocabulary[: args.first]))


def encode(args) -> None:
    from filmgenre.encoders import cache

    for reads in args.inputs:
        if reads not in cache.ENCODERS:
            raise FilmgenreError(f"unknown encoder input '{reads}': choose from {', '.join(cache.ENCODERS)}.")
    for reads in args.inputs or list(cache.ENCODERS):
        cache.embeddings(reads, progress=not args.quiet)


def keys(args) -> None:
    from filmgenre import stamps

    stamps.write_keys()


def train(args) -> None:
    from filmgenre import train
    from filmgenre.registry import MODELS

    known_models([args.model])
    train.use_threads_per_op(MODELS[args.model].threads_per_op if args.threads_per_op is None else args.threads_per_op)
    train.train(args.model, epochs=args.epochs, seed=args.seed, limit=args.limit, batch_size=args.batch_size,
                mixed_precision=args.mixed_precision, jit_compile=args.jit_compile, strategy=args.strategy,
                out=args.out, class_weight=args.class_weight)


def evaluate(args) -> None:
    from filmgenre import artifacts, evaluate, fusion, provenance, uncertainty

    if args.check:
        from filmgenre import figure_index

        metrics = artifacts.read_metrics(required=True)
        stale, figures = provenance.stale(metrics), {**figure_index.stale(), **{
            f"table {key}": reasons for key, reasons in figure_index.stale_tables().items()}}
        for name, reasons in stale.items():
            print(f"{name}: stale ({'; '.join(reasons)})")
        for name in provenance.committed_only(metrics):
            print(f"{name}: committed result, not retrained by `make all` (`make extras` retrains it)")
        for name, reasons in figures.items():
            print(f"{'' if name.startswith('table ') else 'figure '}{name}: stale ({'; '.join(reasons)})")
        if stale or figures:
            raise FilmgenreError("some results are stale: run `filmgenre evaluate` (or `make all`)" if stale else
                                 "some figures or tables are stale: run `filmgenre report` (or `make report`)")
        print("results/metrics.json matches its inputs; every figure and table matches the results it was drawn from")
        return
    if args.from_predictions:
        evaluate.rescore_all()
    else:
        evaluate.evaluate_all(args.names or None)
    fusion.fuse_best()
    uncertainty.add_to_metrics(resamples=args.resamples)


def diff(args) -> None:
    from filmgenre import diff

    if args.summary:  # the end of `make all`, also where nothing can be compared (no git, no results)
        try:
            print(diff.run(args.rev, "summary"))
        except diff.DiffError as error:
            print(f"diff against {args.rev}: not compared: {error}")
        return
    print(diff.run(args.rev, "md" if args.md else "json" if args.json else "text"))


def figures(args) -> None:
    from filmgenre import figure_index

    found = {name: entry for wanted in args.figures for name, entry in figure_index.find(wanted).items()}
    if args.figures and not found:
        raise FilmgenreError(f"no figure {args.figures[0]!r} in {figure_index.index_path()}: give a figure's name, "
                             "label or file (`filmgenre figures` lists them; `make report` draws them)")
    stale = figure_index.stale()
    for name, entry in (found or figure_index.entries()).items():
        print(f"{name} ({entry.get('label') or 'no label'}){' STALE: ' + '; '.join(stale[name]) if name in stale else ''}"
              f"\n  {figure_index.describe(name, entry, code=str)}")


def seeds(args) -> None:
    from filmgenre import seeds

    seeds.run(known_models(args.models), seeds=args.seeds, epochs=args.epochs, class_weight=args.class_weight)


def predict(args) -> None:
    import json

    from filmgenre import predict

    result = predict.predict(poster=args.poster, overview=args.overview, film_id=args.id, top=args.top,
                             names=known_models(args.model))
    print(json.dumps(result, indent=2) if args.json else predict.format_text(result))


def bench(args) -> None:
    from filmgenre.bench import command as bench

    if args.stages:
        from filmgenre.bench import stagecpu

        stagecpu.bench_stages(args.stages, args.data, full=args.full)
    elif args.make_all:
        bench.bench_make_all(args.data, repeats=args.repeats or 1)
    else:
        unknown = sorted(set(args.only or ()) - set(bench.SECTIONS))
        if unknown:
            raise FilmgenreError(f"unknown bench section {unknown[0]!r}: choose from {', '.join(bench.SECTIONS)}")
        bench.run(quick=args.quick, only=args.only, repeats=args.repeats, model_names=known_models(args.model))


def explain(args) -> None:
    from filmgenre import explain

    explain.run(posters=args.posters, texts=args.texts, occlusion_films=args.occlusion_films, name_leakage=not args.no_leakage,
                word_films=args.word_films)


def report(args) -> None:
    from filmgenre import artifacts, tables
    from filmgenre.explain import SUMMARY_FIX
    from filmgenre.preview import render

    # the documents read them: a bad one is named here (also under Quarto), not in a notebook's traceback
    metrics = artifacts.read_metrics(required=True)
    artifacts.read_json(config.paths().results / "explain" / "summary.json", SUMMARY_FIX)
    artifacts.read_json(config.paths().results / "seeds.json", artifacts.SEEDS_FIX, default={})
    tables.dataset(), tables.bench()
    for name, entry in metrics["models"].items():
        if entry["kind"] == "model":
            tables.training(name)

    for output in render.report(config.ROOT, quarto=args.quarto):
        print(os.path.relpath(output))  # where it is from here: _output/report/report.pdf from the project
    readme(args)


def readme(args) -> None:
    from filmgenre import readme

    if readme.update():
        print("README.md: results and goals tables rewritten from results/metrics.json, seeds.json and bench.json")
