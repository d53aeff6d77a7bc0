# Two commands on a fresh machine: `make run` (demo on the embedded database) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Test workers (each starts its own SecantusDB); 2 matches the 2-core CI machine.
WORKERS ?= 2
# The mini-program's TypeScript check (tests/test_generated_clients.py) installs its npm packages here.
MINIPROGRAM := tests/miniprogram
# Installing chromium needs root: plain apt-get as root (CI), sudo otherwise.
SUDO   := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test bench mutate browser openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# One stamp per extra: reinstall when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$*]'
	touch $@

run: $(VENV)/.installed-embedded
	YISHITANG_DEMO=$${YISHITANG_DEMO-1} $(BIN)/yishitang serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev browser $(MINIPROGRAM)/node_modules/.installed
	$(BIN)/python -m pytest -n $(WORKERS) -q

# Debian's chromium and chromedriver for tests/test_dashboard.py (the test fails without them).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ( $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver )

# Node and the pinned npm packages of tests/miniprogram (openapi-typescript, openapi-fetch, typescript),
# for tests/test_generated_clients.py's strict type-check of a mini-program-style client.
$(MINIPROGRAM)/node_modules/.installed: $(MINIPROGRAM)/package-lock.json
	@command -v npm >/dev/null || \
	  ( $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm )
	npm ci --prefix $(MINIPROGRAM) --no-audit --no-fund --loglevel=error
	touch $@

# Benchmarks (not part of `make test`): app vs bare Flask + pymongo, growth with size, load.
# The 1M database is loaded once (about an hour here) and kept in var/bench/1000000 for later runs.
BENCH_SIZES ?= 10000,1000000
BENCH_FLAGS ?= --reuse
bench: $(VENV)/.installed-dev
	$(BIN)/python tests/benchmarks/run.py --sizes $(BENCH_SIZES) $(BENCH_FLAGS)

# Mutation testing of the guard functions (not part of `make test`: about 8 minutes per guard file on
# 2 cores, hours for all). `make mutate MUTANTS='yishitang.ratelimit.*'` narrows it to one file.
GUARDS := 'yishitang.ratelimit.x_hit*' 'yishitang.ratelimit.x__increment*' 'yishitang.scheduler.x_run_once*' \
          'yishitang.idempotency.x__claimed*' 'yishitang.auth.x_decode_access_token*' 'yishitang.auth.x_covers*' \
          'yishitang.users.tokens.x_rotate*' 'yishitang.users.tokens.x_load_user*' \
          'yishitang.issues.transitions.x_transition*' 'yishitang.issues.transitions.x__store*' \
          'yishitang.issues.access.x_of*' 'yishitang.issues.access.x_capacities*' \
          'yishitang.issues.access.x_coordinator_covers*' 'yishitang.issues.access.x_member_of_studio*' \
          'yishitang.issues.access.x_can_view_issue_id*' 'yishitang.consultations.access.x_can_manage*' \
          'yishitang.consultations.service.x__book*' 'yishitang.consultations.checkin.x_check_in*'
MUTANTS ?= $(GUARDS)
mutate: $(VENV)/.installed-dev $(VENV)/.installed-mutate
	rm -rf mutants
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/mutmut results

openapi: $(VENV)/.installed-dev
	$(BIN)/yishitang export-openapi

clean:
	rm -rf $(VENV) var build *.egg-info $(MINIPROGRAM)/node_modules $(MINIPROGRAM)/generated
