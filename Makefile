# One entry point for everything. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

DATA_DIR ?= data
ARTIFACTS_DIR ?= artifacts
DEFAULT_MODEL_DIR ?= models/default
export DATA_DIR ARTIFACTS_DIR

.PHONY: help install lock audit test lint docs bench train promote default-model calibrate inference frontend up down status \
	compose-smoke scale-smoke swarm-stack swarm-deploy swarm-rm swarm-smoke gpu-check ddp-gpu-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt services/requirements-torch.txt services/*/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed  ## create .venv with every service's dependencies and the test tools

lock: install  ## regenerate the hashed lock files the images install (scripts/lock.py; needs PyPI)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) scripts/lock.py

audit: install  ## known vulnerabilities in the lock files (pip-audit; AUDIT_ARGS=--allow-unchecked: list what no source could check)
	$(PY) scripts/audit_locks.py $(AUDIT_ARGS)

test: install  ## ruff (style and the security rules), then the whole test suite
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install  ## ruff
	$(PY) -m ruff check .

docs: install  ## regenerate docs/configuration.md from the services' Settings classes (scripts/settings_reference.py)
	$(PY) scripts/settings_reference.py

bench: install  ## run the benchmarks: JSON in bench/results/, a table printed
	$(PY) -m bench

NPROC ?= 1
# NPROC > 1: torchrun (python -m torch.distributed.run) starts NPROC trainer processes on this machine (DDP)
TRAIN_LAUNCHER := $(if $(filter-out 1,$(NPROC)),-m torch.distributed.run --standalone --nproc_per_node=$(NPROC))

train: install  ## train the model (settings: EPOCHS, DEVICE, DATA_DIR, ... or ARGS="--epochs 5"; NPROC=2: torchrun DDP)
	$(PY) $(TRAIN_LAUNCHER) -m services.trainer $(ARGS)

promote: install  ## make the model VERSION (on disk in ARTIFACTS_DIR) latest.json's model, e.g. one PUBLISH_IF kept out
	$(PY) -m services.trainer.promote $(VERSION)

default-model: install  ## copy the model published in ARTIFACTS_DIR to models/default (the shipped model)
	$(PY) -m services.trainer.export --source $(ARTIFACTS_DIR) --target $(DEFAULT_MODEL_DIR)

calibrate: install  ## fit the temperature of the model in DEFAULT_MODEL_DIR on its validation split (DATA_DIR); republish it
	$(PY) -m services.trainer.recalibrate --model-dir $(DEFAULT_MODEL_DIR) --data-dir $(DATA_DIR)

inference: install  ## run the inference API on http://127.0.0.1:8000
	$(PY) -m services.inference

frontend: install  ## run the web page on http://127.0.0.1:5000
	$(PY) -m services.frontend

up: install  ## start the whole stack as local processes (no Docker)
	bash scripts/stack.sh up

down:  ## stop what `make up` started
	bash scripts/stack.sh down

status:  ## what `make up` started, and whether it still runs
	bash scripts/stack.sh status

compose-smoke: install  ## the Docker stack end to end: build, one `up`, checks through its ports (GPU=1: GPU overlay)
	bash scripts/compose_smoke.sh

scale-smoke: install  ## the API as 3 replicas behind the edge: spread, a model swap and a killed replica under load
	bash scripts/scale_smoke.sh

# Docker Swarm (docs/swarm.md). The stack file is written from the compose files; secrets are files in
# $(SWARM_DIR)/secrets (admin_token, api_keys, secret_key). IMAGE_REGISTRY=host:port/ names the images in a registry
# every node pulls from (then each service is pinned to its image's digest); without it each node needs them locally.
SWARM_DIR ?= .swarm
STACK ?= fashion
IMAGE_REGISTRY ?=
SWARM_RESOLVE_IMAGE ?= $(if $(IMAGE_REGISTRY),always,never)

swarm-stack: install  ## write the Swarm stack file .swarm/stack.yml from the compose files (GPU=1: GPU overlay)
	$(PY) scripts/swarm_stack.py --out $(SWARM_DIR)/stack.yml --secrets-dir $(SWARM_DIR)/secrets \
		--registry "$(IMAGE_REGISTRY)" $(if $(filter 1,$(GPU)),--gpu)

swarm-deploy: swarm-stack  ## deploy (or update) it on the swarm the docker CLI talks to (stack STACK=fashion)
	docker stack deploy --prune --resolve-image $(SWARM_RESOLVE_IMAGE) -c $(SWARM_DIR)/stack.yml $(STACK)

swarm-rm:  ## remove the stack (its named volumes stay)
	docker stack rm $(STACK)

swarm-smoke: install  ## the stack on a private 2-node swarm: rolling update, killed task, rollback under load; rm
	bash scripts/swarm_smoke.sh

gpu-check: install  ## train one epoch and serve predictions on a CUDA GPU, img/s for both (ARGS="--device cpu")
	$(PY) scripts/gpu_check.py $(ARGS)

ddp-gpu-check: install  ## distributed training on CUDA: NCCL + DDP on one GPU; torchrun with 2 ranks when 2+ GPUs
	$(PY) scripts/ddp_gpu_check.py $(ARGS)
