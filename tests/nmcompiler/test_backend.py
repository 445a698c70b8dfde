"""The backend protocol: one ``run`` signature, backends checked when they are loaded,
``nmc backends`` (docs/architecture.md#the-backend-contract)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import backend as B
from nmcompiler.api import compile as compile_network
from nmcompiler.ir import IF, LIF, Dense, Network
from nmcompiler.ir.errors import ToolchainMissing, UsageError

REPO = Path(__file__).resolve().parents[2]


class _LowerOnly(B.Backend):
    """A backend that only lowers: it keeps the base class's run."""

    name = "lower-only"
    families = ("speck",)

    def available(self) -> str | None:
        return "no hardware here"

    def lower(self, compiled, out_dir):
        return Path(out_dir)


class _NoFamilies(_LowerOnly):
    name = "no-families"
    families = ()


class _NarrowRun(_LowerOnly):
    name = "narrow-run"

    def run(self, artifact, inputs, steps):  # the old, narrower signature
        return None


class _Abstract(B.Backend):
    name = "abstract"
    families = ("loihi",)


class _Unnamed(_LowerOnly):
    name = ""


def _eps(monkeypatch, **classes):
    """Register ``classes`` as the installed backends (real EntryPoint objects)."""
    eps = {}
    for entry, cls in classes.items():
        mod = sys.modules[__name__]
        setattr(mod, f"_ep_{entry.replace('-', '_')}", cls)
        eps[entry] = metadata.EntryPoint(name=entry, group=B.ENTRY_POINT_GROUP,
                                         value=f"{__name__}:_ep_{entry.replace('-', '_')}")
    monkeypatch.setattr(B, "_entry_points", lambda: eps)


def test_installed_backends_load_and_are_valid():
    loaded = B.load_backends()
    assert {"emulator", "lava"} <= set(loaded)
    assert "loihi" in loaded["lava"].families
    assert set(loaded["emulator"].families) >= {"emulator", "loihi", "spinnaker", "speck"}
    for cls in loaded.values():
        assert issubclass(cls, B.Backend) and cls.families


@pytest.mark.parametrize("cls, words", [
    (_NoFamilies, "families must be a non-empty tuple"),
    (_NarrowRun, "does not take the keyword-only argument(s) probes, record_all"),
    (_Abstract, "does not implement available, lower"),
    (_Unnamed, "name is empty"),
    (int, "is not a subclass of nmcompiler.backend.Backend"),
])
def test_invalid_backends_are_rejected_when_loaded(monkeypatch, cls, words):
    _eps(monkeypatch, broken=cls)
    with pytest.raises(UsageError) as info:
        B.load_backends()
    assert "'broken'" in str(info.value) and words in str(info.value)
    assert info.value.exit_code == 2


def test_two_backends_with_one_name_are_rejected(monkeypatch):
    _eps(monkeypatch, **{"lower-only": _LowerOnly, "again": _LowerOnly})
    with pytest.raises(UsageError, match="also the name of"):
        B.load_backends()


def test_unknown_backend_lists_the_installed_ones():
    with pytest.raises(UsageError) as info:
        B.get_backend("truenorth")
    assert "emulator" in info.value.hint and "lava" in info.value.hint


def test_entry_name_must_match_the_class_name(monkeypatch):
    _eps(monkeypatch, other=_LowerOnly)
    with pytest.raises(UsageError, match="says its name is 'lower-only'"):
        B.get_backend("other")


def test_base_run_of_a_lowering_backend_says_why_it_cannot_run():
    with pytest.raises(ToolchainMissing, match="cannot run networks here") as info:
        _LowerOnly().run(Path("x"), {}, 1, probes=("a.v",), record_all=True)
    assert info.value.hint == "no hardware here"


def _compiled():
    net = Network("tiny")
    net.input("in", 3)
    net.population("h", 4, LIF(lam=0.5, theta=1.0))
    net.population("o", 2, IF(theta=2.0))
    net.connect("in", "h", Dense(weight=np.full((4, 3), 0.75)), delay=1)
    net.connect("h", "o", Dense(weight=np.ones((2, 4))), delay=1)
    net.output("o")
    return compile_network(net, "emulator", seed=0)


def test_emulator_takes_the_common_run_signature():
    compiled = _compiled()
    emu = B.get_backend("emulator")
    x = (np.random.default_rng(0).random((12, 3)) < 0.5).astype(np.float64)
    plain = emu.run(compiled, {"in": x}, 12)
    every = emu.run(compiled, {"in": x}, 12, record_all=True)
    assert set(every.probes) == {f"{p}.{v}" for p in ("h", "o") for v in ("spikes", "v", "u")}
    np.testing.assert_array_equal(every.outputs["o"], plain.outputs["o"])
    np.testing.assert_array_equal(every.probes["o.spikes"][:, 0], plain.outputs["o"][:, 0])
    one = emu.run(compiled, {"in": x}, 12, probes=("h.v",))
    np.testing.assert_array_equal(one.probes["h.v"], every.probes["h.v"])


def test_nmc_backends_lists_names_families_and_availability():
    out = subprocess.run([sys.executable, "-m", "nmcompiler.cli", "backends"],
                         capture_output=True, text=True, cwd=REPO,
                         env={"COLUMNS": "200", "PATH": ""})
    assert out.returncode == 0, out.stderr
    lines = {line.split("│")[1].strip(): line for line in out.stdout.splitlines()
             if line.count("│") >= 3}
    assert "emulator" in lines and "lava" in lines
    assert "yes" in lines["emulator"] and "speck" in lines["emulator"]
    assert "loihi" in lines["lava"]


def test_script_backends_share_the_artifact_and_input_rules(tmp_path):
    """Lava and PyNN lower through the same ScriptBackend: a lowered folder, its graph
    file and a build directory are all accepted; relative paths are made absolute; the
    input rules differ only in the values each runner can send."""
    import numpy as np

    from nmcompiler.backend import ScriptBackend, get_backend
    from nmcompiler.ir.errors import InputError

    lava, pynn = get_backend("lava"), get_backend("pynn")
    assert isinstance(lava, ScriptBackend) and isinstance(pynn, ScriptBackend)
    folder = tmp_path / "pynn"
    folder.mkdir()
    (folder / "network.npz").write_bytes(b"")
    assert pynn.artifact_files(folder, tmp_path, (), False) == (
        folder / "network.npz", None)
    (folder / "run_pynn.py").write_text("")
    assert pynn.artifact_files(folder / "network.npz", tmp_path, (), False)[1] == (
        folder / "run_pynn.py")
    x = np.array([[0, 2, 0]])
    assert lava.check_inputs({"x": 3}, {"x": x}, 1)["x"].shape == (1, 3)
    with pytest.raises(InputError, match="other than 0 and 1"):
        pynn.check_inputs({"x": 3}, {"x": x}, 1)
    with pytest.raises(InputError, match="non-integer"):
        lava.check_inputs({"x": 3}, {"x": x + 0.5}, 1)
    both = {"x": np.zeros((2, 4, 3)), "y": np.zeros((2, 3))}
    assert lava.check_inputs({"x": 3, "y": 3}, both, 2)["y"].shape == (2, 4, 3)
    assert pynn.check_inputs({"x": 3, "y": 3}, both, 2)["y"].shape == (2, 3)
    with pytest.raises(InputError, match="nothing to run"):
        ScriptBackend.check_steps(0)
