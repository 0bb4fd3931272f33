"""bench_tables: the benchmark's figures as the analysis shows them."""

import json

from filmgenre import bench_tables, tables


def test_bench_rows_list_measured_variants_and_stage_cpu_seconds(project):
    measured = {"model": "cnn", "variant": "xla", "xla": True, "unit": "cpu seconds/epoch", "median": 9.0,
                "runs": [8.0, 9.0, 10.0]}
    bench = {"xla": {"rows": [measured, {"model": "lstm", "variant": "xla", "status": "not supported"}]},
             "stages": {"rows": {"old": [{"stage": "train cnn", "how": "measured", "cpu_seconds": 400.0}]}}}
    (project / "results").mkdir()
    (project / "results" / "bench.json").write_text(json.dumps(bench))
    rows = bench_tables.bench_rows().set_index("figure")
    assert rows.loc["model=cnn, variant=xla, xla=True", "median"] == 9.0
    assert rows.loc["model=cnn, variant=xla, xla=True", "runs"] == 3
    assert rows.loc["model=lstm, variant=xla", "unit"] == "not supported"
    assert rows.loc["old: train cnn (measured)", "median"] == 400.0


def test_every_section_of_the_committed_bench_has_a_measured_row():
    """The analysis's table of "every measured figure" leaves no section out and none blank, except
    sections recorded as not run here (the GPU's)."""
    rows = bench_tables.bench_rows()
    for section in tables.bench():
        measured = rows[(rows["section"] == section) & rows["median"].notna()]
        assert section == "gpu" or len(measured), f"bench.json {section}: no measured row in bench_rows"


def test_cpu_speedups_take_the_later_idle_epochs_median_and_the_xla_multiple(project):
    bench = {"mixed_precision_cpu": {"idle_4_epoch_cpu_seconds_per_epoch": {"float32": [30.0, 10.0, 12.0, 11.0],
                                                                            "mixed_bfloat16": [25.0, 6.0, 5.0, 9.0]},
                                     "rows": {"float32": {"test_micro_f1": 0.48}, "mixed_bfloat16": {"test_micro_f1": 0.46}}},
             "xla": {"rows": [{"model": "cnn", "variant": "as_trained", "median": 4.0},
                              {"model": "cnn", "variant": "xla", "median": 10.0},
                              {"model": "lstm", "variant": "xla", "median": 99.0}]}}
    (project / "results").mkdir()
    (project / "results" / "bench.json").write_text(json.dumps(bench))
    found = bench_tables.cpu_speedups()
    assert found["bfloat16_share"] == 6.0 / 11.0  # the first (tracing) epoch of each left out
    assert (found["bfloat16_micro_f1"], found["float32_micro_f1"], found["xla_multiple"]) == (0.46, 0.48, 2.5)
    (project / "results" / "bench.json").write_text(json.dumps({}))
    assert set(bench_tables.cpu_speedups().values()) == {None}


def test_the_whole_study_names_the_commits_it_was_measured_at(project):
    stages = {"old": "f7e8774", "new": "HEAD", "commits": {"f7e8774": "f7e8774aaaa", "HEAD": "78e0eebbbbb"},
              "totals": {"new_cpu_seconds_all_stages": 1567.9, "ratio_all_stages_new_to_old": 1.123}}
    (project / "results").mkdir()
    (project / "results" / "bench.json").write_text(json.dumps({"stages": stages}))
    assert bench_tables.whole_study() == ("make all has not been timed end to end yet (`filmgenre bench --make-all`); "
                                          "at 78e0eeb its stages took 1,568 CPU s, 1.123 × those of f7e8774 "
                                          "(`filmgenre bench --stages f7e8774 --full`)")
