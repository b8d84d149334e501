# One entry point for every workflow; each target creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MNIST_DATA_DIR ?= $(abspath ../shared/data/mnist)
export MNIST_DATA_DIR

.PHONY: test serve lint model compare reference venv-train venv-device venv-torch clean

$(VENV)/.installed-all: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,device,dev]'
	touch $@ $(VENV)/.installed-device  # everything includes the device side

$(VENV)/.installed-device: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[device]'
	touch $@

## Keras on PyTorch beside the project, for `python -m train.on_torch` (training on a GPU machine
## that has no TensorFlow) and its test. TORCH names the build: 2.13.0 is a CPU wheel where it
## lies on the machine's disk (CI's machines); from PyPI on Linux it is a CUDA build of several GB.
TORCH_VENV ?= .venv-torch
TORCH ?= torch==2.13.0
venv-torch: $(TORCH_VENV)/.installed
$(TORCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet '$(TORCH)'
	$(TORCH_VENV)/bin/python -m pip install --quiet -e '.[gpu-train]'
	touch $@

## UCI's optdigits test digits: real handwriting from outside this repository, which the tests
## measure (bench/optdigits.py). Fetched from PyPI once; where that fails, those tests are
## skipped, saying so, and the next `make test` tries again.
OPTDIGITS := .cache/optdigits/digits.csv.gz
$(OPTDIGITS): | $(VENV)/.installed-all
	-$(PY) -m bench.optdigits $@

## Set up everything and run ruff and the whole test suite. CI (.ci/run) runs this too, after
## installing (as root) the Debian packages two tests need; without them they are skipped.
test: $(VENV)/.installed-all $(OPTDIGITS)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

## Set up the device side only and serve the shipped model: on 127.0.0.1:8000 unless
## DIGITS_HOST / DIGITS_PORT (or any DIGITS_* setting) say otherwise, in the environment or in
## a .env file here. No camera? DIGITS_CAMERA=none make serve.
serve: $(VENV)/.installed-device
	@$(PY) -m device serve $(if $(wildcard .env),--env-file .env)

lint: $(VENV)/.installed-all
	$(PY) -m ruff check .

## Reproduce the shipped model from scratch: train the default recipe (augmented, then a
## short clean pass), go on with training digits as the device cuts them out of pictures,
## blend that with where it started (half each, WiSE-FT); train a small second model from
## scratch on device inputs and join the two (the mean of their logits, one file); with that
## pair as the teacher, train the first network again from scratch ("born-again"
## distillation) and join it with the same small one; convert to int8 (logits, calibrated
## confidence), evaluate with LiteRT on all 10,000 test digits; convert the small member
## alone as the pair's first look (the pair runs only for digits it is not sure of, at a
## threshold chosen on validation digits); write the model card.
model: $(VENV)/.installed-all
	$(PY) -m train --out runs/default
	$(PY) -m train --init-from runs/default/model.keras --no-augment --epochs 3 --patience 2 \
		--learning-rate 1e-4 --styles 0.5 --device-inputs 60000 --out runs/robust
	$(PY) -m train blend runs/default/model.keras runs/robust/model.keras --out runs/blend
	$(PY) -m train --arch digitnet-mini --epochs 15 --styles 0.5 --device-inputs 60000 \
		--out runs/mini
	$(PY) -m train ensemble runs/blend/model.keras runs/mini/model.keras --out runs/ensemble
	$(PY) -m train --teacher runs/ensemble/model.keras --epochs 12 --out runs/distilled
	$(PY) -m train ensemble runs/distilled/model.keras runs/mini/model.keras \
		--out runs/distilled-mini
	$(PY) -m convert runs/distilled-mini/model.keras --out models/ --name digitnet
	$(PY) -m convert first-look runs/distilled-mini/model.keras models/digitnet_int8.json
	cp runs/distilled-mini/model.keras models/digitnet.keras
	$(PY) -m convert card models/digitnet_int8.json

## Train every registered architecture with one recipe and write docs/ARCHITECTURES.md
## (2 epochs each fits a 2-core CPU's afternoon; raise COMPARE_EPOCHS where there is time).
COMPARE_EPOCHS ?= 2
compare: $(VENV)/.installed-all
	$(PY) -m convert compare --epochs $(COMPARE_EPOCHS) --out runs/compare --doc docs/ARCHITECTURES.md

## The reference recipes on their published settings (Keras example: 15 epochs, no
## augmentation) → docs/REFERENCE_RECIPES.md; about 10 minutes on a 2-core CPU.
reference: $(VENV)/.installed-all
	$(PY) -m convert compare --epochs 15 --arch mlp --arch keras-convnet --out runs/reference \
		--doc docs/REFERENCE_RECIPES.md

clean:
	rm -rf $(VENV) $(TORCH_VENV) runs .pytest_cache .ruff_cache
