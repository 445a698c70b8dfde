"""``nmc compile --check-input FILE`` (docs/cli.md): the behaviour check runs on the
user's own input; every bad file is a named error (exit 1 or 2) and leaves no output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nmcompiler import ir
from nmcompiler.cli_checks import MAX_INPUT_VALUE, check_input_arrays, load_inputs
from nmcompiler.ir.errors import InputError, NmcError, UsageError


def _net() -> ir.Network:
    net = ir.Network("tiny")
    net.input("in", 4)
    net.population("o", 3, ir.IF(theta=2.0))
    net.connect("in", "o", ir.Dense(weight=np.ones((3, 4))), delay=1)
    net.output("o")
    return net


def nmc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def test_compile_with_check_input(tmp_path: Path):
    ir.save(_net(), tmp_path / "tiny.nmir")
    x = (np.random.default_rng(0).random((57, 4)) < 0.5).astype(np.int8)
    np.savez(tmp_path / "x.npz", **{"in": x})
    run = nmc("compile", "tiny.nmir", "-t", "loihi2", "--check-input", "x.npz", "-o", "b",
              cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "57 steps of the user's input" in run.stdout
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    beh = rep["passes"]["quantize"]["behaviour"]
    assert beh["steps"] == 57 and beh["input"] == "the user's input"
    want = int(np.count_nonzero(ir.simulate(_net(), {"in": x}, 57).outputs["o"]))
    assert beh["summary"]["float_spikes"] == want > 0
    assert beh["summary"]["float_spikes_kept"] == 1.0


def test_bad_check_input_is_exit_1_and_writes_nothing(tmp_path: Path):
    ir.save(_net(), tmp_path / "tiny.nmir")
    np.save(tmp_path / "x.npy", np.zeros((10, 5)))
    run = nmc("compile", "tiny.nmir", "-t", "loihi2", "--check-input", "x.npy", "-o", "b",
              cwd=tmp_path)
    assert run.returncode == 1
    assert "--check-input 'x.npy'" in run.stderr and "(T, 4)" in run.stderr
    assert not (tmp_path / "b").exists()
    run = nmc("compile", "tiny.nmir", "-t", "loihi2", "--check-input", "none.npz", "-o", "b",
              cwd=tmp_path)
    assert run.returncode == 2 and "does not exist" in run.stderr


_DTYPES = st.sampled_from([np.bool_, np.int8, np.int64, np.uint16, np.float32, np.float64,
                           np.complex64])
_ARRAYS = hnp.arrays(dtype=_DTYPES,
                     shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
                     elements={"allow_nan": True, "allow_infinity": True}) | hnp.arrays(
    dtype=_DTYPES, shape=st.tuples(st.integers(0, 5), st.sampled_from([(4,), (2, 4)])).map(
        lambda s: (s[0],) + s[1]))


_VALID = hnp.arrays(dtype=st.sampled_from([np.bool_, np.int8, np.float64]),
                    shape=st.tuples(st.integers(1, 6), st.just(4)),
                    elements={"allow_nan": False, "allow_infinity": False,
                              "min_value": 0, "max_value": 1})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays=st.dictionaries(st.sampled_from(["in", "other", "x"]), _ARRAYS, max_size=3)
       | st.fixed_dictionaries({"in": _VALID}),
       single=st.one_of(st.none(), _ARRAYS), corrupt=st.booleans())
def test_any_check_input_file_is_accepted_or_a_named_error(arrays, single, corrupt):
    """Whatever the file holds: accepted (then it simulates on the network) or an
    InputError / UsageError, never another exception."""
    net = _net()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("x.npy" if single is not None else "x.npz")
        if single is not None:
            np.save(path, single)
        else:
            np.savez(path, **arrays)
        if corrupt:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        try:
            got = check_input_arrays(load_inputs(path), net, path)
        except (InputError, UsageError) as exc:
            assert isinstance(exc, NmcError) and exc.exit_code in (1, 2)
            assert str(exc)
            event("refused")
            return
    event("accepted")
    x = got["in"]
    assert set(got) == {"in"} and x.shape[0] >= 1 and x.shape[-1] == 4
    assert x.dtype.kind in "biuf" and np.all(np.isfinite(x))
    assert np.max(np.abs(x), initial=0) <= MAX_INPUT_VALUE
    ir.simulate(net, got)  # the check can run on it


@pytest.mark.parametrize("bad", [np.zeros((0, 4)), np.full((3, 4), np.nan)])
def test_api_check_input_refuses_what_cannot_be_simulated(bad):
    from nmcompiler import compile as nmc_compile

    with pytest.raises(InputError):
        nmc_compile(_net(), "loihi2", check_input={"in": bad})
