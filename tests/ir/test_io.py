"""Save / load: bit-exact round trip of every kind, clear errors on bad files (item 5)."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir import (
    CONNECTIVITY_TYPES,
    IF,
    LI,
    LIF,
    MODEL_TYPES,
    RF,
    AvgPool2d,
    Conv2d,
    Dense,
    Network,
    OneToOne,
    Reset,
    Sparse,
    SumPool2d,
    load,
    save,
    verify,
)
from nmcompiler.ir.errors import FormatError


def every_kind() -> Network:
    """A network holding every neuron model and connectivity kind, with odd parameters."""
    rng = np.random.default_rng(0)
    net = Network("all-kinds", metadata={"source": "test", "dt": 1e-3})
    net.input("img", shape=(2, 6, 6))
    net.input("vec", 5)
    net.population("conv", model=LIF(alpha_u=0.5, lam=np.linspace(0.1, 0.9, 32),
                                      theta=1.25, reset=Reset.SOFT, graded=True, graded_max=7),
                   shape=(2, 4, 4))
    net.population("sum", model=IF(theta=2.0, refractory=3, fire_at_threshold=True),
                   shape=(2, 3, 3))
    net.population("avg", model=IF(noise=0.1, seed=42, v_reset=-0.5), shape=(2, 3, 3))
    net.population("rf", 4, RF(lam=np.array([0.9 + 0.1j, 0.5j, -0.3 + 0.2j, 0.7]), theta=0.5))
    net.population("li", 3, LI(alpha_u=0.25, lam=0.75, bias=np.array([0.1, -0.2, 1e-300])))
    net.connect("img", "conv", Conv2d(weight=rng.normal(size=(2, 1, 3, 3)), groups=2,
                                     stride=(1, 1), padding=(0, 0), dilation=(1, 1)), delay=0)
    net.connect("img", "sum", SumPool2d(kernel=(2, 2), stride=(2, 2)), delay=2)
    net.connect("img", "avg", AvgPool2d(kernel=(3, 3), stride=(2, 2), padding=(1, 1)))
    net.connect("vec", "rf", Sparse.from_dense(rng.normal(size=(4, 5)) * (rng.random((4, 5)) < .5),
                                               delays=rng.integers(0, 3, size=(4, 5))))
    net.connect("rf", "li", Dense(weight=rng.normal(size=(3, 4)).astype(np.float32),
                                  delays=rng.integers(0, 2, size=(3, 4))), delay=3)
    net.connect("li", "li", OneToOne(weight=np.array([1, 2, 3], dtype=np.int8)), delay=1)
    net.connect("rf", "rf", OneToOne(weight=-0.5, delays=np.array([0, 1, 2, 3])), delay=1)
    net.output("conv")
    net.output("li", name="readout")
    net.probe("rf", "v")
    net.probe("li", "u")
    return net


def same_value(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    return type(a) is type(b) and a == b


def same_record(a, b) -> bool:
    if type(a) is not type(b):
        return False
    return all(same_value(getattr(a, f.name), getattr(b, f.name))
               for f in dataclasses.fields(a))


def assert_networks_equal(a: Network, b: Network) -> None:
    assert a.name == b.name and a.metadata == b.metadata
    assert list(a.inputs) == list(b.inputs) and list(a.populations) == list(b.populations)
    for k in a.inputs:
        assert a.inputs[k].shape == b.inputs[k].shape
    for k, p in a.populations.items():
        q = b.populations[k]
        assert p.shape == q.shape and same_record(p.model, q.model), k
    assert list(a.projections) == list(b.projections)
    for k, p in a.projections.items():
        q = b.projections[k]
        assert (p.pre, p.post, p.delay) == (q.pre, q.post, q.delay)
        assert same_record(p.conn, q.conn), k
    assert [(o.name, o.source) for o in a.outputs.values()] == [
        (o.name, o.source) for o in b.outputs.values()]
    assert [p.key for p in a.probes] == [p.key for p in b.probes]


def test_round_trip_covers_every_kind_bit_exactly(tmp_path):
    net = verify(every_kind())
    # the test enumerates the kinds: a new model or connectivity cannot skip it
    assert {type(p.model) for p in net.populations.values()} == set(MODEL_TYPES)
    assert {type(p.conn) for p in net.projections.values()} == set(CONNECTIVITY_TYPES)
    path = save(net, tmp_path / "net.nmir")
    back = verify(load(path))
    assert_networks_equal(net, back)
    # the same network gives the same bytes
    save(back, tmp_path / "again.nmir")
    assert path.read_bytes() == (tmp_path / "again.nmir").read_bytes()
    # and simulates identically
    rng = np.random.default_rng(1)
    inputs = {"img": (rng.random((8, 72)) < 0.5).astype(float), "vec": rng.random((8, 5))}
    a, b = ir.simulate(net, inputs), ir.simulate(back, inputs)
    for k in a.outputs:
        np.testing.assert_array_equal(a.outputs[k], b.outputs[k])
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k], b.probes[k])


def test_unknown_version(tmp_path):
    path = save(every_kind(), tmp_path / "n.nmir")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest["version"] = 99
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(FormatError, match=r"has format version 99; this nmcompiler reads "
                       r"version 1: use the nmcompiler release that wrote it"):
        load(path)


def test_truncated_file(tmp_path):
    path = save(every_kind(), tmp_path / "n.nmir")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="is truncated or not an nmcompiler file.*save it again"):
        load(path)


def test_corrupted_byte(tmp_path):
    path = save(every_kind(), tmp_path / "n.nmir")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("arrays/00003.npy")
    data[info.header_offset + 30 + len(info.filename) + info.file_size - 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"member 'arrays/00003.npy' is corrupted \(CRC "
                       r"mismatch\): the file was damaged"):
        load(path)


def test_missing_array(tmp_path):
    path = save(every_kind(), tmp_path / "n.nmir")
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "arrays/00002.npy"}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(FormatError, match="is missing array 'arrays/00002.npy': the file is "
                       "incomplete"):
        load(path)


def test_not_a_network_file(tmp_path):
    junk = tmp_path / "junk.nmir"
    junk.write_text("hello")
    with pytest.raises(FormatError, match="truncated or not an nmcompiler file"):
        load(junk)
    with pytest.raises(FormatError, match="does not exist: check the path"):
        load(tmp_path / "absent.nmir")
    other = tmp_path / "other.nmir"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "something.else", "version": 1}))
    with pytest.raises(FormatError, match="holds format 'something.else', expected "
                       "'nmcompiler.ir'"):
        load(other)


def test_failed_save_leaves_nothing(tmp_path):
    net = every_kind()
    net.metadata["bad"] = object()
    with pytest.raises(TypeError):
        save(net, tmp_path / "x.nmir")
    assert list(tmp_path.iterdir()) == []
