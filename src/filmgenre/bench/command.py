"""`filmgenre bench`: the sections, run one by one into ``results/bench.json``, and `make all` timed whole."""

import datetime
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable


from filmgenre import config, dataset, files, train
from filmgenre.bench.common import GOALS, Settings, load_average, machine, run_measured, summary
from filmgenre.bench.pipelines import bench_inference, bench_input_overhead, bench_jpeg_decode, bench_lstm, bench_poster_pipeline
from filmgenre.bench.training import bench_gpu, bench_memory, bench_sentence_encoder, bench_xla

# --------------------------------------------------------------------------- the command
SECTIONS: dict[str, Callable[[Settings, Callable], dict]] = {
    "poster_pipeline": bench_poster_pipeline,
    "jpeg_decode": bench_jpeg_decode,
    "input_overhead": bench_input_overhead,
    "lstm": bench_lstm,
    "inference": bench_inference,
    "memory": bench_memory,
    "xla": bench_xla,
    "sentence_encoder": bench_sentence_encoder,
    "gpu": bench_gpu,
}


def run(quick: bool = False, only: list[str] | None = None, repeats: int | None = None, log=print,
        model_names: list[str] | None = None) -> dict:
    """Run the chosen sections (all by default), merging each into ``results/bench.json`` as it ends.

    Runs with training's runtime settings (seeds, op determinism), so the epoch times
    compare with ``train.json``'s. Returns the sections written.
    """
    unknown = sorted(set(only or []) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    settings = Settings(quick=quick, repeats=repeats, models=tuple(model_names or ()))
    _warn_if_busy(log)
    train.configure_runtime(config.SEED, "default", mixed_precision=False)
    written = {}
    for name in [section for section in SECTIONS if not only or section in only]:
        log(f"bench {name}{' (quick: a few batches, numbers meaningless)' if quick else ''} ...")
        load_before = load_average()
        section = SECTIONS[name](settings, log)
        written[name] = {"command": settings.command(name), **section, "quick": quick, **machine(),
                         "load_average_1min": {"before": load_before, "after": load_average()},
                         "measured_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        files.merge_json(config.paths().bench, name, written[name])
    log(f"Wrote {', '.join(written)} to {config.paths().bench}")
    return written


def _warn_if_busy(log) -> None:
    load, cores = load_average(), os.cpu_count() or 1
    if load is not None and load > 0.5 * cores:
        log(f"warning: load average {load} on {cores} cores: something else is running, timings will be noisy.")


# --------------------------------------------------------------------------- the whole study
def time_make_all_once(data: Path, log_path: Path, log, keep: bool) -> dict:
    """One fresh clone of the committed HEAD, installed (timed apart), then ``make all``."""
    workdir = Path(tempfile.mkdtemp(prefix="filmgenre-make-all-"))
    clone = workdir / "filmgenre"
    env = {key: value for key, value in os.environ.items() if key not in {"FILMGENRE_ROOT", "VIRTUAL_ENV"}}
    try:
        subprocess.run(["git", "clone", "--quiet", str(config.ROOT), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                                check=True).stdout.strip()
        log(f"  cloned {commit[:10]} into {clone}; make install ...")
        install = run_measured(["make", "install"], clone, log_path, env)
        log(f"  installed in {install['seconds'] / 60:.1f} min; make all DATA={data} ...")
        job = run_measured(["make", "all", f"DATA={data}"], clone, log_path, env)
        log(f"  make all: {job['seconds'] / 60:.1f} min, {job['cpu_seconds'] / 60:.1f} CPU min, "
            f"peak {job['peak_rss_mib']:,.0f} MiB")
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"commit": commit, "install_minutes": install["seconds"] / 60, "minutes": job["seconds"] / 60,
            "cpu_minutes": job["cpu_seconds"] / 60, "peak_rss_mib": job["peak_rss_mib"]}


def bench_make_all(data: Path | str, repeats: int = 1, log=print, keep: bool = False) -> dict:
    """Time ``make all DATA=...`` in a fresh clone: the study as a newcomer would run it.

    Clones the committed HEAD of the project (uncommitted changes are not measured),
    installs it (timed apart: it depends on the network, not on the study), then runs
    every stage from the zip to the report. Each repeat is a new clone. Writes the
    ``make_all`` section. ``keep`` leaves the clones in the temporary folder to inspect.
    """
    data = Path(data).resolve()
    if not data.is_file():
        raise dataset.DatasetError(f"{data}: no such file. Pass the dataset zip with --data.")
    where = config.paths()
    log_path = where.logs / "bench-make-all.log"
    log_path.unlink(missing_ok=True)
    _warn_if_busy(log)
    log(f"bench make_all: {repeats} run(s) of make all, most of an hour each; output in {log_path}")
    runs = [time_make_all_once(data, log_path, log, keep) for _ in range(repeats)]
    minutes = summary([run["minutes"] for run in runs], "minutes")
    peak = summary([run["peak_rss_mib"] for run in runs], "MiB")
    section = {
        "command": f"filmgenre bench --make-all --data {data}" + (f" --repeats {repeats}" if repeats != 1 else ""),
        **machine(),
        "note": "Wall time and peak RSS of `make all` (prepare, train, evaluate, report) in a fresh clone "
                "of the committed HEAD, after `make install` (timed apart, not part of the goal). The peak "
                "is that of the largest single process of the tree (RUSAGE_CHILDREN), not a sum: the "
                f"stages run one at a time. Goal: <= {GOALS['make_all_minutes']:.0f} min and "
                f"<= {GOALS['make_all_peak_rss_mib']:.0f} MiB.",
        "git_commit": runs[-1]["commit"],
        "rows": {"wall_time": minutes, "peak_rss": peak,
                 "cpu_time": summary([run["cpu_minutes"] for run in runs], "CPU minutes (user + system)"),
                 "install": summary([run["install_minutes"] for run in runs], "minutes")},
        "goal_minutes": GOALS["make_all_minutes"],
        "goal_peak_rss_mib": GOALS["make_all_peak_rss_mib"],
        "meets_goal": (minutes["median"] <= GOALS["make_all_minutes"]
                       and peak["median"] <= GOALS["make_all_peak_rss_mib"]),
        "log": str(log_path),
        "load_average_1min": {"after": load_average()},
        "measured_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    files.merge_json(where.bench, "make_all", section)
    log(f"Wrote make_all to {where.bench}")
    return section
