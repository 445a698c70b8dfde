"""Inputs the fuzz suite found (docs/reliability.md), kept as regression tests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nmcompiler.ir.errors import ImportFormatError

DATA = Path(__file__).parent / "data"


def test_a_nir_file_that_makes_hdf5_loop_is_a_named_error(monkeypatch):
    """A bit-flipped NIR file on which the HDF5 library loops inside C code (no Python
    time limit reaches it): read in a child process with a time limit first."""
    pytest.importorskip("nir")
    from nmcompiler import load_model
    from nmcompiler.frontends import nir_checks

    monkeypatch.setattr(nir_checks, "PROBE_TIMEOUT_S", 5)
    t0 = time.perf_counter()
    with pytest.raises(ImportFormatError, match="did not finish reading it"):
        load_model(DATA / "hdf5_loop.nir")
    assert time.perf_counter() - t0 < 30


def _resigned(tmp_path: Path, edit, *, whole: bool = False) -> Path:
    """A compiled artifact whose quantisation record ``edit`` changes, re-signed with a
    correct content digest (a forgery the digest alone cannot catch)."""
    import json
    import zipfile

    import numpy as np

    from nmcompiler import compile as nmc_compile
    from nmcompiler import ir
    from nmcompiler.compiled import content_digest, save_compiled
    from nmcompiler.ir.io import read_archive, write_archive

    net = ir.Network("forged")
    net.input("in", 4)
    net.population("h", 3, ir.LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.connect("in", "h", ir.Dense(weight=np.full((3, 4), 0.4)), delay=1)
    net.output("h")
    save_compiled(nmc_compile(net, target="loihi2"), tmp_path / "b")
    src = tmp_path / "b" / "compiled.nmc"
    with zipfile.ZipFile(src) as z:
        version = json.loads(z.read("manifest.json"))["version"]
    manifest, arrays = read_archive(src, format_name="nmcompiler.compiled", version=version)
    edit(manifest if whole else manifest["network"]["metadata"]["quantization"])
    manifest["digest"] = content_digest(manifest, arrays)
    write_archive(src, manifest, arrays)
    return tmp_path / "b"


@pytest.mark.parametrize("edit, named", [
    (lambda q: q["populations"]["h"].update(bias_exp=2**63), "populations.h.bias_exp"),
    (lambda q: q["populations"]["h"].update(du=[1, 2]), "populations.h.du"),
    (lambda q: q["populations"]["h"].update(scale=-2.0), "populations.h.scale"),
    (lambda q: q["projections"]["in->h"].update(weight_exp="7"), "weight_exp"),
    (lambda q: q["projections"]["in->h"].update(post="in"), "projections.in->h.post"),
    (lambda q: q["populations"].update(ghost={"scale": 1.0}), "ghost"),
    (lambda q: q.update(comparison="<"), "comparison"),
])
def test_a_resigned_compiled_artifact_with_a_bad_quantisation_entry_is_refused(
        tmp_path, edit, named):
    """Found by test_fuzz_compiled_resigned: ``bias_exp = 2**63`` in a re-signed
    ``compiled.nmc`` ended as an internal error (OverflowError) in the emulator."""
    from nmcompiler.compiled import load_compiled
    from nmcompiler.ir.errors import FormatError

    build = _resigned(tmp_path, edit)
    with pytest.raises(FormatError, match="quantisation record") as exc:
        load_compiled(build)
    assert named in str(exc.value)


def test_a_valid_quantisation_record_passes_its_check(tmp_path):
    from nmcompiler.compiled import load_compiled

    build = _resigned(tmp_path, lambda q: None)
    assert load_compiled(build).quantization.populations["h"].scale > 0


def test_a_nir_weight_scale_of_1e300_is_a_named_error(tmp_path):
    """Found by test_fuzz_nir_file (long profile): ``w_in = 1e300`` on a LIF node gave
    finite float64 weights whose squares overflowed in the quantiser (exit 70). Weights and
    parameters beyond float32's range are now refused by ``ir.verify``."""
    pytest.importorskip("nir")
    import h5py
    import numpy as np
    from test_fuzz_files import small_net

    from nmcompiler import compile as nmc_compile
    from nmcompiler import load_model
    from nmcompiler.exporters.nir import write_nir
    from nmcompiler.ir.errors import NmcError

    write_nir(small_net(), tmp_path / "f.nir")
    with h5py.File(tmp_path / "f.nir", "r+") as f:
        del f["node/nodes/h/w_in"]
        f.create_dataset("node/nodes/h/w_in", data=np.asarray(1e300))
    with pytest.raises(NmcError, match="beyond the float32 range"):
        net, _ = load_model(tmp_path / "f.nir")
        nmc_compile(net, target="loihi2")


@pytest.mark.parametrize("edit, named", [
    (lambda m: m["report"]["summary"].update(output_shift_steps=True),
     "summary.output_shift_steps"),
    (lambda m: m["report"]["summary"].update(output_shift_steps={"h": -3}),
     "summary.output_shift_steps.h"),
    (lambda m: m["report"]["passes"].update(lower=[1]), "passes.lower"),
    (lambda m: m["report"]["passes"]["lower"].update(retiming={"lags": {"h": 2**40}}),
     "passes.lower.retiming.lags.h"),
])
def test_a_resigned_compiled_artifact_with_a_bad_report_entry_is_refused(
        tmp_path, edit, named):
    """Found by the long fuzz run: ``report.summary.output_shift_steps = true`` in a
    re-signed ``compiled.nmc`` ended as an internal error (AttributeError) when ``nmc run``
    aligned the outputs; the report entries a run reads are checked on load."""
    from nmcompiler.compiled import load_compiled
    from nmcompiler.ir.errors import FormatError

    build = _resigned(tmp_path, edit, whole=True)
    with pytest.raises(FormatError, match="report entry") as exc:
        load_compiled(build)
    assert named in str(exc.value)
