# nmcompiler: everything a fresh machine needs is installed from here.
#   make demo   - create .venv, install, run the main job
#   make test   - create .venv and .venv-lava, install, run every test
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
PIP     := $(VENV)/bin/pip install -q -c constraints.txt
export MPLBACKEND := Agg

.PHONY: demo test lint venv lava-venv spynnaker-venv brian2-venv bench clean fuzz

venv: $(VENV)/.installed
lava-venv: $(LAVA)/.installed
# sPyNNaker, for bench/compile_vs_spynnaker.py only (kept apart: it pins its own stack)
spynnaker-venv: $(SPYNN)/.installed

# Brian2 2.9 needs numpy < 2.4, for bench/emulator_speed.py only
brian2-venv: $(BRIAN)/.installed

$(BRIAN)/.installed: Makefile
	test -x $(BRIAN)/bin/python || $(PY) -m venv $(BRIAN)
	$(BRIAN)/bin/pip install -q --upgrade pip
	$(BRIAN)/bin/pip install -q "brian2==2.9.*" "numpy<2.4"
	touch $@

$(SPYNN)/.installed: Makefile
	test -x $(SPYNN)/bin/python || $(PY) -m venv $(SPYNN)
	$(SPYNN)/bin/pip install -q --upgrade pip
	$(SPYNN)/bin/pip install -q "sPyNNaker==1!7.4.1" numpy
	touch $@

$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# torch first, from the local CPU wheel (TOOLCHAINS.md)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[nir,frameworks,spinnaker,bench,dev]"
	# sinabs pins nir<=1.0.4 and norse pulls torchvision (a CUDA torch): no deps for them
	$(PIP) --no-deps sinabs==3.1.3 norse==1.1.0 pbr
	touch $@

$(LAVA)/.installed: pyproject.toml constraints.txt Makefile
	@test -n "$(PY_LAVA)" || { echo "Lava needs Python 3.10 and none was found (PATH, ~/.pyenv/versions)"; exit 3; }
	test -x $(LAVA)/bin/python || $(PY_LAVA) -m venv $(LAVA)
	$(LAVA)/bin/pip install -q --upgrade pip
	$(LAVA)/bin/pip install -q "lava-nc==0.10.0" pytest
	$(LAVA)/bin/pip install -q --no-deps -e .
	$(LAVA)/bin/pip install -q "ortools>=9.8" "pymetis>=2023.1" "typer>=0.12" "rich>=13" "matplotlib>=3.7" tomli
	touch $@

demo: venv lava-venv
	$(VENV)/bin/python -m nmcompiler.demo

test: venv lava-venv
	$(VENV)/bin/python -m pytest -q

# the long fuzz profile (docs/reliability.md): 8 properties x FUZZ_EXAMPLES cases (>= 10,000);
# the figures (cases, internal errors, hangs, tracebacks, leftovers) go to build/fuzz.json
FUZZ_EXAMPLES ?= 1300
fuzz: venv
	mkdir -p build
	NMC_FUZZ_PROFILE=long NMC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) NMC_FUZZ_FIGURES=build/fuzz.json NMC_KILLS=20 \
	  $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/fuzz
	cat build/fuzz.json

lint: venv
	$(VENV)/bin/ruff check .

bench: venv lava-venv spynnaker-venv brian2-venv
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) $(LAVA) $(SPYNN) $(BRIAN) build .pytest_cache
