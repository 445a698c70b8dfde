# nmcompiler: everything a fresh machine needs is installed from here.
#   make demo   - create .venv, install, run the main job
#   make test   - create .venv, .venv-lava and .venv-spynnaker, install, run every test
# Interpreters: found on PATH, or in pyenv's versions (pyenv's shims only answer for the
# versions pyenv has selected, so python3.10 may not be on PATH even where it is installed).
find_python = $(firstword $(foreach p,$(1) $(wildcard $(HOME)/.pyenv/versions/$(2).*/bin/$(1)) \
  /usr/bin/$(1) /usr/local/bin/$(1),$(shell $(p) -c 'import sys; print(sys.version_info[:2] == ($(subst .,$(comma),$(2))))' 2>/dev/null | grep -q True && echo $(p))))
comma   := ,
ifeq ($(origin PY),undefined)
PY      := $(call find_python,python3.11,3.11)
endif
ifeq ($(origin PY_LAVA),undefined)
PY_LAVA := $(call find_python,python3.10,3.10)
endif
VENV    := .venv
LAVA    := .venv-lava
SPYNN   := .venv-spynnaker
BRIAN   := .venv-brian2
# Every install into an environment goes through its constraints file (pins: the versions
# the tests passed with; tests/test_environments.py checks each line below uses its file).
PIP       := $(VENV)/bin/pip install -q -c constraints.txt
PIP_LAVA  := $(LAVA)/bin/pip install -q -c constraints-lava.txt
PIP_SPYNN := $(SPYNN)/bin/pip install -q -c constraints-spynnaker.txt
PIP_BRIAN := $(BRIAN)/bin/pip install -q -c constraints-brian2.txt
export MPLBACKEND := Agg

.PHONY: demo test lint venv lava-venv spynnaker-venv brian2-venv bench clean fuzz

venv: $(VENV)/.installed
lava-venv: $(LAVA)/.installed
# sPyNNaker (kept apart: it pins its own stack): run_pynn.py --simulator spinnaker on a
# virtual board in tests/backends/spinnaker and bench/compile_vs_spynnaker.py, spynnaker_tables.py
spynnaker-venv: $(SPYNN)/.installed

# Brian2 2.9 needs numpy < 2.4, for bench/emulator_speed.py only
brian2-venv: $(BRIAN)/.installed

$(BRIAN)/.installed: constraints-brian2.txt Makefile
	test -x $(BRIAN)/bin/python || $(PY) -m venv $(BRIAN)
	$(PIP_BRIAN) --upgrade pip
	$(PIP_BRIAN) "brian2==2.9.*" "numpy<2.4"
	touch $@

$(SPYNN)/.installed: constraints-spynnaker.txt Makefile
	test -x $(SPYNN)/bin/python || $(PY) -m venv $(SPYNN)
	$(PIP_SPYNN) --upgrade pip
	$(PIP_SPYNN) "sPyNNaker==1!7.4.1" numpy
	touch $@

$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(PIP) --upgrade pip
	# torch first, from the local CPU wheel (constraints.txt says why)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[nir,speck,spinnaker,scale,frameworks,bench,dev]"
	# sinabs pins nir<=1.0.4 and declares samna (a registry stub that downloads a binary when
	# imported: never installed); norse pulls torchvision (a CUDA torch): no deps for them
	$(PIP) --no-deps sinabs==3.1.3 norse==1.1.0 pbr rockpool==3.1.0
	touch $@

$(LAVA)/.installed: pyproject.toml constraints-lava.txt Makefile
	@test -n "$(PY_LAVA)" || { echo "Lava needs Python 3.10 and none was found (PATH, ~/.pyenv/versions)"; exit 3; }
	test -x $(LAVA)/bin/python || $(PY_LAVA) -m venv $(LAVA)
	$(PIP_LAVA) --upgrade pip
	# nmcompiler's own [loihi] extra: lava-nc 0.10 and the core, numpy < 2 as Lava declares
	$(PIP_LAVA) -e ".[loihi]" pytest
	touch $@

demo: venv lava-venv
	$(VENV)/bin/python -m nmcompiler.examples.demo

test: venv lava-venv spynnaker-venv
	$(VENV)/bin/python -m pytest -q

# the long fuzz profile (docs/reliability.md): 9 properties x FUZZ_EXAMPLES cases (>= 10,000);
# the figures (cases, internal errors, hangs, tracebacks, leftovers) go to build/fuzz.json
FUZZ_EXAMPLES ?= 1300
fuzz: venv
	mkdir -p build
	NMC_FUZZ_PROFILE=long NMC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) NMC_FUZZ_FIGURES=build/fuzz.json NMC_KILLS=20 \
	  $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/fuzz
	cat build/fuzz.json

# ruff (style, docstrings, complexity) and mypy (types) over the packages; settings and
# per-module relaxations in pyproject.toml
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m mypy

bench: venv lava-venv spynnaker-venv brian2-venv
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) $(LAVA) $(SPYNN) $(BRIAN) build .pytest_cache
