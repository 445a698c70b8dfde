"""Lowering to a Lava graph, the written artifact, availability and ``nmc deploy`` (no Lava)."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import EntryPoint

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import nmcompiler.backend as nb
from nmcompiler import ir
from nmcompiler.api import compile as nmc_compile
from nmcompiler.backends.loihi import LoihiBackend
from nmcompiler.backends.loihi.lower import NEVER_FIRES_VTH, lower_compiled, read_graph, write_graph
from nmcompiler.compiled import save_compiled
from nmcompiler.ir.connectivity import Dense, OneToOne, Sparse
from nmcompiler.ir.errors import BackendError, ToolchainMissing
from nmcompiler.ir.models import LI, LIF, Reset


def _net(**lif) -> ir.Network:
    rng = np.random.default_rng(1)
    net = ir.Network("small")
    net.input("in", 4)
    net.population("h", 3, LIF(alpha_u=0.5, lam=0.9, theta=1.0, bias=0.05, **lif))
    net.population("o", 2, LI(alpha_u=0.25, lam=0.8))
    net.connect("in", "h", Dense(weight=rng.normal(size=(3, 4))))
    net.connect("h", "h", Sparse.from_dense(rng.normal(size=(3, 3)) * 0.3), delay=3)
    net.connect("h", "o", Dense(weight=rng.normal(size=(2, 3))), delay=0)
    net.connect("in", "o", Dense(weight=np.ones((2, 4))))
    net.population("r", 3, LIF(theta=0.5))
    net.connect("h", "r", OneToOne(weight=0.7), delay=2)
    net.output("o")
    net.probe("h", "u")
    return net


@pytest.fixture(scope="module")
def compiled():
    return nmc_compile(_net(), "loihi2", seed=0)


def test_lower_maps_ir_to_lava_processes(compiled):
    g = lower_compiled(compiled)
    q = compiled.network.metadata["quantization"]
    pops = {p["name"]: p for p in g.populations}
    assert pops["h"]["du"].tolist() == [q["populations"]["h"]["du"]] * 3
    assert pops["h"]["spiking"] and not pops["o"]["spiking"]
    assert pops["o"]["vth"].tolist() == [NEVER_FIRES_VTH] * 2  # readout never fires
    conns = {c["name"]: c for c in g.connections}
    rec = conns["h->h"]
    assert rec["sparse"] and rec["delay"] is not None and set(rec["delay"].tolist()) == {2}
    # random weights into h: synapse groups (by magnitude and sign), each a Lava
    # connection with its own weight exponent and sign mode (docs/passes.md#weight-groups)
    groups = [n for n in conns if n.startswith("in->h")]
    assert len(groups) >= 2 and groups[0] == "in->h"
    for n in groups:
        assert conns[n]["weight_exp"] == q["projections"][n]["weight_exp"]
        assert conns[n]["sign_mode"] == q["projections"][n]["sign_mode"]
    one = nmc_compile(_net(), "loihi2", seed=0, quantize_options={"weight_split": False})
    conns1 = {c["name"]: c for c in lower_compiled(one).connections}
    dense = conns1["in->h"]
    assert not dense["sparse"] and dense["delay"] is None  # IR delay 1 = Lava Dense
    w = one.network.projections["in->h"].conn.weight
    shift = one.network.metadata["quantization"]["projections"]["in->h"]["weight_shift"]
    np.testing.assert_array_equal(
        dense["w"], (w[dense["row"], dense["col"]] / 2 ** shift).astype(np.int64))
    assert g.outputs == {"o": "o/v"} and g.probes == {"h.u": "h/u"}
    assert g.inputs == {"in": 4}
    one = conns["h->r"]
    assert one["sparse"] and one["row"].tolist() == one["col"].tolist() == [0, 1, 2]


def test_graph_file_round_trip(compiled, tmp_path):
    g = lower_compiled(compiled)
    g2 = read_graph(write_graph(g, tmp_path / "network.npz"))
    assert g2.outputs == g.outputs and g2.records == g.records
    for a, b in zip(g.connections, g2.connections, strict=True):
        for k in ("row", "col", "w"):
            np.testing.assert_array_equal(a[k], b[k])


def test_graph_file_is_byte_identical(compiled, tmp_path):
    # same compiled network, same bytes (numpy.savez would stamp the current time)
    import time

    g = lower_compiled(compiled)
    a = write_graph(g, tmp_path / "a.npz").read_bytes()
    time.sleep(2.1)  # ZIP timestamps have a 2 s resolution
    b = write_graph(lower_compiled(compiled), tmp_path / "b.npz").read_bytes()
    assert a == b


def test_lower_writes_standalone_script(compiled, tmp_path):
    out = LoihiBackend().lower(compiled, tmp_path)
    assert out == tmp_path / "lava"
    script = (out / "run_lava.py").read_text()
    tree = ast.parse(script)
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
            for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= {"__future__", "argparse", "json", "sys", "time", "pathlib", "numpy",
                    "lava", "scipy"}, mods  # lava + numpy (scipy comes with lava)
    assert (out / "network.npz").is_file()


@pytest.mark.parametrize("kw,what", [
    ({"reset": Reset.SOFT}, "reset 'soft'"),
    ({"refractory": 2}, "a refractory period"),
    ({"reset": Reset.NONE}, "reset 'none'"),
])
def test_unsupported_features_name_the_population(kw, what):
    net = _net(**kw)
    cn = nmc_compile(net, "loihi2", seed=0)
    with pytest.raises(BackendError, match=f"population 'h' uses {what}"):
        lower_compiled(cn)


def test_other_families_are_refused():
    cn = nmc_compile(_net(), "spinnaker", seed=0)
    with pytest.raises(BackendError, match="loihi / loihi2 networks only"):
        lower_compiled(cn)


def test_available_says_what_is_missing(monkeypatch):
    monkeypatch.setenv("NMC_LAVA_PYTHON", "/nonexistent/python3.10")
    reason = LoihiBackend().available()
    assert reason is not None and "/nonexistent/python3.10" in reason
    assert "make lava-venv" in reason


def _with_lava_entry_point(monkeypatch):
    if "lava" in nb.backend_names():
        return
    orig = nb._entry_points

    def eps():
        d = orig()
        d["lava"] = EntryPoint("lava", "nmcompiler.backends.loihi:LoihiBackend",
                               nb.ENTRY_POINT_GROUP)
        return d

    monkeypatch.setattr(nb, "_entry_points", eps)


def test_deploy_without_lava_exits_3_after_lowering(compiled, tmp_path, monkeypatch):
    from nmcompiler.cli_deploy import register

    _with_lava_entry_point(monkeypatch)
    monkeypatch.setenv("NMC_LAVA_PYTHON", str(tmp_path / "no-python"))
    build = save_compiled(compiled, tmp_path / "build")
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    res = CliRunner().invoke(app, ["deploy", str(build), "--backend", "lava", "--steps", "5"])
    assert isinstance(res.exception, ToolchainMissing)
    assert res.exception.exit_code == 3
    assert str(tmp_path / "no-python") in str(res.exception)
    assert (build / "deploy-lava" / "lava" / "run_lava.py").is_file()


def test_nmc_main_maps_missing_lava_to_exit_3(compiled, tmp_path):
    """Through nmcompiler.cli.main in a subprocess, as `nmc deploy` runs."""
    build = save_compiled(compiled, tmp_path / "build")
    code = (
        "import sys, nmcompiler.backend as nb\n"
        "from importlib.metadata import EntryPoint\n"
        "o = nb._entry_points\n"
        "nb._entry_points = lambda: {**o(), 'lava': EntryPoint('lava', "
        "'nmcompiler.backends.loihi:LoihiBackend', nb.ENTRY_POINT_GROUP)}\n"
        "from nmcompiler import cli\n"
        "from nmcompiler.cli_deploy import register\n"
        "if 'deploy' not in [c.name for c in cli.app.registered_commands]: register(cli.app)\n"
        f"sys.argv = ['nmc', 'deploy', {str(build)!r}, '--backend', 'lava']\n"
        "cli.main()\n"
    )
    env = {"NMC_LAVA_PYTHON": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 3, r.stderr
    assert "cannot run here" in r.stderr and "NMC_LAVA_PYTHON" in r.stderr
