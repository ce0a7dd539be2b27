# gongkai: `make up` runs the platform, `make test` runs the suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
SERVICES := intake review freshness accountability
STAMP := $(VENV)/.installed
# Three workers on two cores, a test module per worker at a time: tests wait on real processes
# (nats-server, services, Chromium) part of the time, and with two workers the cores were busy
# 1.4 of 2 (user+sys over wall); three keep both busy. Module-scoped platforms stay in one worker.
# The files go out longest first, by their measured seconds (tests/ordering.py), not by xdist's
# own reordering.
PYTEST_WORKERS ?= -n 3 --dist loadfile --no-loadscope-reorder

# Some machines and images set PYTHONDONTWRITEBYTECODE: then every process compiles the repo's
# own 30,000 lines again before it starts (a process that runs the services: 0.35 s of CPU, 1.15x
# its import time) and the suite starts over a hundred processes. Every target here lets Python
# keep that bytecode in __pycache__ beside the sources (ignored by git and by the image build).
# A PYTHONPYCACHEPREFIX under .venv/ starts as fast once filled, but fills with the standard
# library and every dependency as well (4 s of CPU for each process that starts on an empty
# one), whose bytecode pip has already written beside them.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: up up-demo test test-durations fuzz lint typecheck bench soak lock clean asyncapi schemas nats-config images

$(STAMP): requirements.lock shared/pyproject.toml $(foreach s,$(SERVICES),services/$(s)/pyproject.toml) demo/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		-e shared $(foreach s,$(SERVICES),-e services/$(s)) -e demo
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/gongkai up $(ARGS)

up-demo: $(STAMP)
	$(BIN)/gongkai up --demo $(ARGS)

# mypy checks the types beside the tests rather than before them: on a fresh clone it has no
# cache and takes 17 s of one core, while the workers start and collect. Its report follows the
# tests' (its own file, not interleaved), and either failing fails the target.
test: $(STAMP)
	$(BIN)/ruff check shared services demo tests bench
	@$(BIN)/mypy > $(VENV)/mypy.out 2>&1 & types=$$!; \
	echo "$(BIN)/pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)  (mypy beside it)"; \
	$(BIN)/pytest $(PYTEST_WORKERS) $(PYTEST_ARGS); tests=$$?; \
	wait $$types; typed=$$?; echo "$(BIN)/mypy:"; cat $(VENV)/mypy.out; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

# Measure each test file's seconds again (tests/durations.json), which orders the files for the
# workers; the file is written only when the whole suite passes.
test-durations: $(STAMP)
	GONGKAI_RECORD_DURATIONS=1 $(BIN)/pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Explore: fresh hypothesis/schemathesis examples from a seed it prints, 10x each test's budget
# (4x the schemathesis requests), only the tests that generate input. `make test` is fixed.
# Reproduce what a run found: make fuzz SEED=<the seed it printed>.
fuzz: $(STAMP)
	@seed="$(SEED)"; [ -n "$$seed" ] || seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	echo "make fuzz: seed $$seed (reproduce: make fuzz SEED=$$seed)"; \
	GONGKAI_FUZZ=1 $(BIN)/pytest $(PYTEST_WORKERS) --hypothesis-seed=$$seed $(PYTEST_ARGS); \
	status=$$?; echo "make fuzz: seed $$seed (reproduce: make fuzz SEED=$$seed)"; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check shared services demo tests bench
	$(BIN)/mypy

# Every benchmark, then one summary table (docs/reliability.md, "Load"); several minutes.
# BENCH_EVENTS=100000 make bench scales the 1,000,000-event runs (and the rest) down.
bench: $(STAMP)
	$(BIN)/python -m bench.run_all

# The fault tests under a bigger load than CI's (docs/reliability.md, "Faults").
soak: $(STAMP)
	GONGKAI_SOAK=1 $(BIN)/pytest -s tests/e2e/test_faults.py $(PYTEST_ARGS)

# The four service images from the one deploy/Dockerfile (docs/operations.md), tagged $(GONGKAI_VERSION).
GONGKAI_VERSION ?= latest
images:
	for s in $(SERVICES); do \
		docker build -f deploy/Dockerfile --build-arg SERVICE=$$s -t gongkai-$$s:$(GONGKAI_VERSION) . || exit 1; \
	done

# The deploy files' NATS users and permissions, from gongkai.trust.matrix (docs/operations.md).
nats-config: $(STAMP)
	$(BIN)/gongkai nats config --out deploy

# Every contract document from the event registry: AsyncAPI, JSON Schemas, the tables of
# docs/events.md. tests/unit/test_docs_current.py fails when a committed copy is stale.
asyncapi: $(STAMP)
	$(BIN)/gongkai events asyncapi --out docs/asyncapi
	$(BIN)/gongkai events schema --out docs/schemas
	$(BIN)/gongkai events docs --out docs/events.md

schemas: asyncapi

# Re-resolve the pins from requirements.in (needs the network); commit the result.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet pip==$(PIP_VERSION) && .lockenv/bin/pip install --quiet -r requirements.in
	(echo "# Generated by 'make lock' from requirements.in; install with pip install -r requirements.lock"; \
	 .lockenv/bin/pip freeze --all --exclude-editable | grep -v '^pip==') > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
