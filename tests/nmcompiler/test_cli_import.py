"""The import options on the command line: every command that reads a model takes every
option of ``from_nir``, with the frontend's own choices, and errors speak in flags
(docs/cli.md#importing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmcompiler.cli_import import as_flags
from nmcompiler.frontends.nir import InputScale, Integration, Preset, ResetMode

nir = pytest.importorskip("nir")

IMPORTING = ("compile", "run")
REPO = Path(__file__).resolve().parents[2]


def nmc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env={"COLUMNS": "200", "PATH": ""})


@pytest.mark.parametrize("command", IMPORTING)
def test_every_import_option_on_every_importing_command(command):
    out = nmc(command, "--help")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for flag in ("--preset", "--dt", "--integration", "--reset", "--reset-delay",
                 "--no-reset-delay", "--input-scale", "--tau-times-dt", "--no-tau-times-dt",
                 "--lenient"):
        assert flag in text, flag
    for enum in (Preset, Integration, ResetMode, InputScale):
        for member in enum:
            assert member.value in text, member


def _lif_file(tmp_path, *, batched: bool, tau: float = 0.02):
    n_in, n = 3, 2
    shape_in = [1, n_in] if batched else [n_in]
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array(shape_in)}),
               "fc": nir.Affine(weight=np.full((n, n_in), 0.5), bias=np.zeros(n)),
               "lif": nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / 1e-4),
                              v_leak=np.zeros(n), v_threshold=np.ones(n),
                              v_reset=np.zeros(n)),
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    path = tmp_path / "model.nir"
    nir.write(str(path), graph)
    return path


def test_defect_hint_is_the_flag_and_names_the_file(tmp_path):
    path = _lif_file(tmp_path, batched=True)
    out = nmc("compile", str(path), "-t", "emulator", "-o", str(tmp_path / "b"))
    assert out.returncode == 1, out.stderr
    assert "--lenient" in out.stderr and "lenient=True" not in out.stderr
    assert "model.nir" in out.stderr
    ok = nmc("compile", str(path), "-t", "emulator", "-o", str(tmp_path / "b"), "--lenient")
    assert ok.returncode == 0, ok.stderr
    assert "warning" in ok.stderr


def test_error_inside_a_node_keeps_the_file_name(tmp_path):
    path = _lif_file(tmp_path, batched=False, tau=1e-5)  # Euler at dt = 1e-4 > tau
    out = nmc("compile", str(path), "-t", "emulator", "-o", str(tmp_path / "b"))
    assert out.returncode == 1
    assert "NIR file" in out.stderr and "model.nir" in out.stderr
    assert "node 'lif'" in out.stderr
    assert "--preset norse" in out.stderr and "preset='norse'" not in out.stderr


def test_snntorch_reset_flags_and_the_assumption_warning(tmp_path):
    path = _lif_file(tmp_path, batched=False)
    base = ("run", str(path), "-t", "emulator", "--steps", "20", "-o", str(tmp_path / "r"))
    out = nmc(*base, "--preset", "snntorch")
    assert out.returncode == 0, out.stderr
    assert "reset_mechanism='subtract'" in out.stderr and "--reset zero" in out.stderr
    assert "--no-reset-delay" in out.stderr and "reset_delay=" not in out.stderr
    out = nmc(*base[:-1], str(tmp_path / "r2"), "--preset", "snntorch", "--reset", "zero",
              "--no-reset-delay")
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr


@given(name=st.sampled_from(["preset", "dt", "integration", "reset", "lenient",
                             "reset_delay", "tau_times_dt", "input_scale"]),
       value=st.one_of(st.sampled_from(["True", "False"]),
                       st.from_regex(r"[a-z0-9.]{1,8}", fullmatch=True)))
def test_as_flags_spells_every_option_as_its_flag(name, value):
    quoted = value if value in ("True", "False") else f"'{value}'"
    text = as_flags(f"import with {name}={quoted} to repair it")
    flag = "--" + name.replace("_", "-")
    assert f"{name}=" not in text
    if value == "True":
        assert f"with {flag} to" in text
    elif value == "False":
        assert f"with --no-{flag[2:]} to" in text
    else:
        assert f"with {flag} {value} to" in text
