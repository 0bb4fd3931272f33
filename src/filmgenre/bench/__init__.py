"""`filmgenre bench`: how fast and how big each part of the study is, in ``results/bench.json``.

Every figure is the median of several runs, with the runs kept beside it, so a noisy run
shows as noise rather than hiding in an average. Each section records the command that
reproduces it, the devices, the library versions and the machine's load average while it
ran (timings taken while something else uses the CPUs are not worth comparing).
Sections written by other stages (``prepare``, ``train``, ...) are kept: each section is
merged into the file on its own.

``--quick`` runs every section on a few batches, once: it checks the benchmark works (the
tests use it), its numbers mean nothing. ``bench_make_all`` times the whole study from a
fresh clone, which takes most of an hour, so it runs only when asked (``--make-all``).

Infrastructure around the study, not part of it: ``common`` (settings, records, timing and
process measurement), ``pipelines`` (input pipelines, LSTM padding, inference), ``training``
(memory, XLA, GPU variants, the sentence encoder), ``command`` (the sections and the whole
study), ``stagecpu`` (each `make all` stage of two commits, side by side).
"""

