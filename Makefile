# Front door: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# setup.py compiles the worker's murmur2 (stream/contract/_murmur2.c) where a C
# compiler and Python's headers are found (`make tools` installs both, so the targets
# that need both run `tools` first); an edit to either reinstalls.
$(STAMP): pyproject.toml setup.py stream/contract/_murmur2.c
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned packages

tools: ## Install what the tests call (promtool, prometheus, docker-compose, chromium, Java, Maven) from Debian, only when missing
	@tools/install-tools.sh

check-tools: tools install ## Check that every external command the tests call resolves
	$(PY) .ci/check-tools

# The simulated council's children aged 0-17, the base of the report's rates per 10,000
# children (section 7; docs/operations.md, "Rates per 10,000 children"). An assumption for
# the simulator's county (Surrey, stream/upstream/profile.py), not a published 0-17 figure:
# ONS mid-2016 estimate, 72,400 under 5 + 172,100 aged 5-16 = 244,500 aged 0-16 (Surrey-i
# JSNA, surreyi.gov.uk/jsna/surrey-context), plus one year-group of 17-year-olds at the 5-16
# average (172,100 / 12 = 14,342): 258,842, rounded to 259,000. The environment wins.
SIMULATED_COUNCIL := run year report screenshot
$(SIMULATED_COUNCIL): export CSPA_CHILD_POPULATION ?= 259000
$(SIMULATED_COUNCIL): export CSPA_CHILD_POPULATION_YEAR ?= 2016
$(SIMULATED_COUNCIL): export CSPA_CHILD_POPULATION_SOURCE ?= simulated council (assumption): ONS mid-2016 estimate for Surrey aged 0-16 (244,500, Surrey-i JSNA) plus one year-group of 17-year-olds

run: tools install ## Main job: local Kafka, a worker and 14 days of simulated traffic; prints the URLs
	$(PY) -m stream run $(if $(SCALE),--scale $(SCALE))

year: tools install ## Replay a generated year (2019) of one council's traffic, then print its report
	$(PY) -m stream run --start 2019-01-01 --days 365
	$(PY) -m stream report --months 2019-01..2019-12
	$(PY) -m stream report --months 2019-01..2019-12 --format html --output report.html
	@echo "HTML report: report.html"

# Not run by the tests: it needs the worker `make year` left running.
screenshot: install ## After make year: the year's HTML report with running totals in headless Chromium, to docs/report-year.png
	$(PY) -m stream report --months 2019-01..2019-12 --since 2019-01 --format html --output .cache/report-year.html
	$(PY) tools/report-screenshot.py .cache/report-year.html docs/report-year.png

import-samples: tools install ## Import the shipped sample exports into the running main job
	@test -s .cache/pseudonym.key || { mkdir -p .cache; $(PY) -c "import secrets; print(secrets.token_hex(32))" > .cache/pseudonym.key; echo "made a demo key in .cache/pseudonym.key"; }
	$(PY) -m stream import topics/samples/annex_a_contacts.csv --mapping topics/mappings/annex_a_contacts.toml --key-file .cache/pseudonym.key
	$(PY) -m stream import topics/samples/telephony_cdr.csv --mapping topics/mappings/telephony_cdr.toml --key-file .cache/pseudonym.key
	$(PY) -m stream import topics/samples/feedback_log.csv --mapping topics/mappings/feedback_log.toml --key-file .cache/pseudonym.key
	$(PY) -m stream import topics/samples/staff_roster.csv --mapping topics/mappings/staff_roster.toml --key-file .cache/pseudonym.key
	$(PY) -m stream import topics/samples/audit_log.csv --mapping topics/mappings/audit_log.toml --key-file .cache/pseudonym.key
	$(PY) -m stream import topics/samples/learning_reviews.csv --mapping topics/mappings/learning_reviews.toml --key-file .cache/pseudonym.key
	$(PY) -m stream import topics/samples/dip_samples.csv --mapping topics/mappings/dip_samples.toml --key-file .cache/pseudonym.key

stop: install ## Stop the main job's worker and broker
	$(PY) -m stream stop

# pytest runs under coverage (its Python children too: [tool.coverage.run] in
# pyproject.toml); the per-package summary is printed whatever pytest's result. A
# failing pytest (a failed test, or exit 5: none ran) fails the target with its own
# code; otherwise the summary's (2 below the floor) does.
test: tools install ## The whole suite: lint, types, unit, integration and fault tests, with coverage
	$(PY) -m ruff check stream tests grafana bench
	$(PY) -m mypy
	rm -rf .cache/coverage
	$(PY) -m coverage run -m pytest -q; tests=$$?; \
	$(PY) -m coverage combine --quiet && $(PY) tools/coverage_summary.py; cov=$$?; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; exit $$cov

unit: install ## Unit tests only (seconds)
	$(PY) -m pytest -q tests/unit

integration: tools install ## Real-broker tests except the slow fault group
	$(PY) -m pytest -q -m "integration and not faults"

faults: tools install ## The slow real-broker fault tests
	$(PY) -m pytest -q -m faults

bench: tools install ## Benchmarks: worker vs aiokafka ceiling vs Quix Streams; writes results/bench/
	$(PY) -m bench --profile --output results/bench $(if $(EVENTS),--events $(EVENTS)) $(if $(RECOVERY_CONTACTS),--recovery-contacts $(RECOVERY_CONTACTS))

bench-throughput: tools install ## One-worker replay only, for profiling steps (EVENTS=300000, PROFILE=file.raw)
	$(PY) -m bench.throughput $(if $(EVENTS),--events $(EVENTS)) $(if $(PROFILE),--profile $(PROFILE))

lint: install ## ruff and mypy
	$(PY) -m ruff check stream tests grafana bench
	$(PY) -m mypy

schemas: install ## Regenerate topics/schemas from the event models
	$(PY) -m stream schemas

report: install ## Render the committee report from the running worker (MONTHS=2019-08..2019-10)
	$(PY) -m stream report $(if $(MONTHS),--months $(MONTHS))

clean: ## Remove caches (keeps the Kafka jars)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .cache/coverage

.PHONY: help install tools check-tools run year screenshot import-samples stop bench bench-throughput test unit integration faults lint schemas report clean
