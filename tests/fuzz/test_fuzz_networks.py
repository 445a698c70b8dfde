"""Random invalid IR networks through the Python API (docs/reliability.md): ``verify``,
``compile`` and ``simulate`` either succeed or raise a named nmcompiler error, within a
time bound; whatever ``verify`` passes, ``compile`` and ``simulate`` handle."""

from __future__ import annotations

import math
import signal

import numpy as np
from fuzz_harness import FIGURES, FIGURES_BY_TEST, TIME_LIMIT_S, Hang, write_figures
from hypothesis import given
from hypothesis import strategies as st

import nmcompiler
from nmcompiler.ir import (
    IF,
    LI,
    LIF,
    AvgPool2d,
    Conv2d,
    Dense,
    Network,
    OneToOne,
    Sparse,
    simulate,
    verify,
)
from nmcompiler.ir.errors import NmcError

param = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 1.0, 1.5, -0.1, 2.0, math.nan, math.inf,
                                   1e300, -1e300]), st.floats(-2, 2, allow_nan=False))
names = st.sampled_from(["in", "a", "b", "c", "x"])
sizes = st.integers(-2, 12)


@st.composite
def models(draw):
    kind = draw(st.sampled_from(["LIF", "IF", "LI"]))
    if kind == "LIF":
        return LIF(alpha_u=draw(param), lam=draw(param), theta=draw(param))
    if kind == "IF":
        return IF(theta=draw(param))
    return LI(alpha_u=draw(param), lam=draw(param))


@st.composite
def conns(draw, n_pre, n_post):
    kind = draw(st.sampled_from(["dense", "dense", "one", "sparse", "conv", "pool"]))
    rows = draw(st.sampled_from([n_post, max(n_post, 0) + 1, 0]))
    cols = draw(st.sampled_from([n_pre, max(n_pre, 0) + 1]))
    val = draw(param)
    if kind == "dense":
        w = np.full((max(rows, 0), max(cols, 0)), val)
        return Dense(weight=w)
    if kind == "one":
        return OneToOne(weight=np.full(max(rows, 0), val))
    if kind == "sparse":
        k = draw(st.integers(0, 6))
        indptr = np.asarray(draw(st.lists(st.integers(-2, 8), min_size=max(cols, 0) + 1,
                                          max_size=max(cols, 0) + 1)), np.int64)
        indices = np.asarray(draw(st.lists(st.integers(-2, 14), min_size=k, max_size=k)),
                             np.int64)
        return Sparse(indptr=indptr, indices=indices, weight=np.full(k, val), n_post=rows)
    if kind == "conv":
        kk = draw(st.integers(0, 4))
        s_, p_ = draw(st.integers(-1, 3)), draw(st.integers(-1, 2))
        return Conv2d(weight=np.full((1, 1, kk, kk), val), stride=(s_, s_), padding=(p_, p_))
    k_, s_ = draw(st.integers(-1, 3)), draw(st.integers(-1, 3))
    return AvgPool2d(kernel=(k_, k_), stride=(s_, s_))


@st.composite
def networks(draw):
    net = Network(draw(st.sampled_from(["n", "", "x/../y", "[b]z[/b]"])))
    built = {}
    for _ in range(draw(st.integers(0, 2))):
        name, size = draw(names), draw(sizes)
        try:
            net.input(name, size)
            built[name] = size
        except NmcError:
            pass
    for _ in range(draw(st.integers(0, 3))):
        name, size = draw(names), draw(sizes)
        try:
            if draw(st.booleans()):
                net.population(name, shape=(1, max(size, 0), max(size, 0)), model=draw(models()))
                built[name] = max(size, 0) ** 2
            else:
                net.population(name, size, draw(models()))
                built[name] = size
        except NmcError:
            pass
    for _ in range(draw(st.integers(0, 4))):
        pre, post = draw(names), draw(names)
        delay = draw(st.one_of(st.integers(-2, 40), st.sampled_from([10**9, 2**70, 1.5, math.nan,
                                                                    -1.0])))
        try:
            net.connect(pre, post, draw(conns(built.get(pre, 3), built.get(post, 3))),
                        delay=delay)
        except (NmcError, TypeError, ValueError):
            pass
    for _ in range(draw(st.integers(0, 2))):
        try:
            net.output(draw(names))
        except NmcError:
            pass
    return net


def _bounded(fn, *args, **kw):
    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(Hang()))
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        return fn(*args, **kw)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@given(net=networks(), data=st.data())
def test_fuzz_random_networks(net, data):
    FIGURES["cases"] += 1
    FIGURES_BY_TEST["networks"] = FIGURES_BY_TEST.get("networks", 0) + 1
    try:
        try:
            _bounded(verify, net)
        except NmcError:
            return
        try:
            inputs = {k: np.zeros((3, max(v.size, 0))) for k, v in net.inputs.items()}
            _bounded(simulate, net, inputs, steps=3)
            _bounded(nmcompiler.compile, net, data.draw(st.sampled_from(["emulator",
                                                                          "loihi2"])))
        except NmcError:
            pass
    except Hang:
        FIGURES["hangs"] += 1
        write_figures()
        raise AssertionError(f"hang (> {TIME_LIMIT_S} s)") from None
    except Exception:
        FIGURES["internal_errors"] += 1
        write_figures()
        raise
    write_figures()
