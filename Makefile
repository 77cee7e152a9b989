# Two entry points, each doing its own set-up on a fresh machine:
#   make demo  - the whole DAG on the embedded demo, then prints where the paper table is
#   make test  - the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/cpu-lock.txt | sha1sum | cut -c1-12)
CORES ?= 2

.PHONY: demo demo-llm test lint clean-demo

$(STAMP): pyproject.toml requirements/cpu-lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	# torch first, pinned, so nothing else can pull a multi-GB CUDA build.
	$(PY) -m pip install -q "$$(grep '^torch==' requirements/cpu-lock.txt)"
	$(PY) -m pip install -q -r requirements/cpu-lock.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*; touch $@

demo: $(STAMP)
	@start=$$(date +%s); \
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/demo.yaml --rerun-incomplete all && \
	cat results/paper_table.md && \
	echo "Paper table: $$(pwd)/results/paper_table.md (+ .csv); per-benchmark results: results/<model>/<benchmark>.json ($$(( $$(date +%s) - start )) s)"

# Remake the shipped demo LLM (resources/demo_llm; 48 min on 2 cores) and print the sha256 to pin in
# config/demo.yaml. Not part of `make demo`, which uses the shipped copy as the real DAG uses a download.
demo-llm: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/demo_llm.yaml --rerun-incomplete -- \
		work/demo_llm/checkpoints/demo_llm.sha256
	$(PY) -m internvl.demo.ship work/demo_llm/models/demo_llm resources/demo_llm

test: $(STAMP)
	$(VENV)/bin/ruff check internvl workflow tests bench
	$(PY) -m pytest -q

clean-demo:
	rm -rf work/demo results/demo_init results/demo_align results/demo_sft results/paper_table.* .snakemake
