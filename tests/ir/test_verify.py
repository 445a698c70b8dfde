"""Every structural fault has its own exception and a message naming object, rule, hint."""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler.ir import (
    IF,
    LI,
    LIF,
    RF,
    AvgPool2d,
    Conv2d,
    Dense,
    Network,
    OneToOne,
    Sparse,
    verify,
)
from nmcompiler.ir.errors import (
    ConvGeometryError,
    DanglingReferenceError,
    DelayError,
    DuplicateNameError,
    EmptyPopulationError,
    NetworkError,
    NonFiniteError,
    ParameterError,
    ShapeMismatchError,
    ZeroDelayCycleError,
)


def base() -> Network:
    net = Network("v")
    net.input("in", 4)
    net.population("hidden", 3, LIF(lam=0.9))
    net.population("out", 2, LI())
    net.connect("in", "hidden", Dense(weight=np.ones((3, 4))), delay=1)
    net.connect("hidden", "out", Dense(weight=np.ones((2, 3))), delay=1)
    net.output("out")
    return net


def test_valid_network_passes_and_is_returned():
    net = base()
    assert verify(net) is net


def test_shape_mismatch():
    net = base()
    net.connect("in", "out", Dense(weight=np.ones((4, 2))), name="bad")
    with pytest.raises(ShapeMismatchError) as e:
        verify(net)
    msg = str(e.value)
    assert "projection 'bad'" in msg and "(4, 2)" in msg and "expected (2, 4)" in msg
    assert "(n_post, n_pre)" in msg
    assert isinstance(e.value, NetworkError) and e.value.obj == "bad"


def test_parameter_array_shape_mismatch():
    net = base()
    net.population("p", 5, LIF(theta=np.ones(4)))
    with pytest.raises(ShapeMismatchError, match=r"population 'p': parameter 'theta' has shape "
                       r"\(4,\), expected a scalar or \(5,\): give one value per neuron"):
        verify(net)


def test_dangling_reference():
    net = base()
    net.connect("hiden", "out", Dense(weight=np.ones((2, 3))), name="typo")
    with pytest.raises(DanglingReferenceError,
                       match="projection 'typo' comes from 'hiden'.*did you mean 'hidden'"):
        verify(net)
    net = base()
    net.output("nowhere")
    with pytest.raises(DanglingReferenceError, match="output 'nowhere' reads 'nowhere'"):
        verify(net)
    net = base()
    net.connect("hidden", "in", Dense(weight=np.ones((4, 3))), name="into-input")
    with pytest.raises(DanglingReferenceError, match="inputs take no projections"):
        verify(net)
    net = base()
    net.probe("ghost", "v")
    with pytest.raises(DanglingReferenceError, match="probe 'ghost.v' targets 'ghost'"):
        verify(net)


def test_duplicate_name():
    net = base()
    with pytest.raises(DuplicateNameError, match="population 'in' cannot be added: the name is "
                       "already used by an? input"):
        net.population("in", 2, IF())
    with pytest.raises(DuplicateNameError, match="projection 'in->hidden' already exists"):
        net.connect("in", "hidden", Dense(weight=np.ones((3, 4))), name="in->hidden")
    # a network assembled by hand can still carry a clash: verify finds it
    from nmcompiler.ir.network import Population

    net = base()
    net.populations["in"] = Population(name="in", shape=(4,), model=IF())
    with pytest.raises(DuplicateNameError, match="'in' is both an input and a population"):
        verify(net)


@pytest.mark.parametrize(
    "model,param,text",
    [
        (LIF(lam=1.5), "lam", r"0 <= lam <= 1"),
        (LIF(alpha_u=-0.1), "alpha_u", r"0 <= alpha_u <= 1"),
        (IF(theta=0.0), "theta", r"theta > 0"),
        (RF(lam=complex(1.0, 1.0)), "lam", r"\|lam\| <= 1"),
        (IF(refractory=-1), "refractory", r"integer >= 0"),
        (IF(graded=True, graded_max=0), "graded_max", r"integer >= 1"),
        (LIF(noise=-1.0), "noise", r">= 0"),
        (LIF(lam=complex(0.5, 0.1)), "lam", r"only the resonate-and-fire model"),
        (LIF(theta="high"), "theta", r"expected a number or an array"),
    ],
)
def test_out_of_range_or_unknown_parameter(model, param, text):
    net = base()
    net.population("bad", 2, model)
    with pytest.raises(ParameterError, match=rf"population 'bad'.*'{param}'.*{text}") as e:
        verify(net)
    assert e.value.hint


def test_unknown_model_and_connectivity():
    net = base()
    net.population("odd", 2, object())  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="unknown neuron model object: use one of LIF"):
        verify(net)
    net = base()
    net.connect("in", "out", "dense", name="s")  # type: ignore[arg-type]
    with pytest.raises(ParameterError,
                       match="projection .s. has unknown connectivity str: use one of Dense"):
        verify(net)


def test_delays():
    net = base()
    net.connect("in", "out", Dense(weight=np.ones((2, 4))), delay=-2, name="neg")
    with pytest.raises(DelayError, match=r"projection 'neg' has a negative delay \(-2\): a spike "
                       "cannot arrive before it is sent"):
        verify(net)
    net = base()
    net.connect("in", "out", Dense(weight=np.ones((2, 4))), delay=1.5, name="frac")
    with pytest.raises(DelayError, match="expected an integer number of steps"):
        verify(net)
    net = base()
    net.connect("in", "out", Dense(weight=np.ones((2, 4))), delay=0, name="zero")
    verify(net)  # same-step delivery is fine without a cycle
    with pytest.raises(DelayError, match=r"projection 'zero' has delay 0 < 1, the smallest delay "
                       "this target allows: run the lower pass"):
        verify(net, min_delay=1)
    net = base()
    dl = -np.ones((2, 4), dtype=np.int64)
    net.connect("in", "out", Dense(weight=np.ones((2, 4)), delays=dl), name="syn")
    with pytest.raises(DelayError, match="per-synapse delay is negative"):
        verify(net)


def test_non_finite_weights_and_parameters():
    net = base()
    w = np.ones((2, 4))
    w[1, 2] = np.nan
    net.connect("in", "out", Dense(weight=w), name="nan")
    with pytest.raises(NonFiniteError, match=r"projection 'nan': weight contains 1 NaN"):
        verify(net)
    net = base()
    net.population("p", 2, LIF(bias=np.array([0.0, np.inf])))
    with pytest.raises(NonFiniteError, match="population 'p': parameter 'bias' contains 1"):
        verify(net)


def test_empty_population():
    net = base()
    net.population("empty", 0, IF())
    with pytest.raises(EmptyPopulationError, match="population 'empty' has shape .0,. and so no "
                       "neurons: give it at least one neuron"):
        verify(net)
    net = base()
    net.input("void", shape=(2, 0))
    with pytest.raises(EmptyPopulationError, match="input 'void'"):
        verify(net)


def test_zero_delay_cycle_is_named():
    net = Network("cyc")
    for n in ("a", "b", "c"):
        net.population(n, 2, IF())
    net.connect("a", "b", OneToOne(), delay=0)
    net.connect("b", "c", OneToOne(), delay=0)
    net.connect("c", "a", OneToOne(), delay=0)
    with pytest.raises(ZeroDelayCycleError, match="form a cycle a -> b -> c -> a: give one "
                       "projection of the cycle a delay"):
        verify(net)
    net.projections["c->a"] = net.projections["c->a"].__class__(
        name="c->a", pre="c", post="a", conn=OneToOne(), delay=1)
    verify(net)
    self_loop = Network("self")
    self_loop.population("x", 1, IF())
    self_loop.connect("x", "x", OneToOne(), delay=0)
    with pytest.raises(ZeroDelayCycleError, match="cycle x -> x"):
        verify(self_loop)


def test_conv_geometry():
    net = Network("conv")
    net.input("img", shape=(2, 8, 8))
    net.population("c", model=IF(), shape=(4, 7, 7))
    net.connect("img", "c", Conv2d(weight=np.ones((4, 2, 3, 3))), name="conv")
    with pytest.raises(ConvGeometryError, match=r"projection 'conv': Conv2d of input \(2, 8, 8\) "
                       r"gives output \(4, 6, 6\), but 'c' is declared \(4, 7, 7\)"):
        verify(net)
    net = Network("conv")
    net.input("img", shape=(3, 8, 8))
    net.population("c", model=IF(), shape=(4, 6, 6))
    net.connect("img", "c", Conv2d(weight=np.ones((4, 2, 3, 3))), name="conv")
    with pytest.raises(ConvGeometryError, match="needs 2 input channels, but 'img' has 3"):
        verify(net)
    net = Network("pool")
    net.input("img", shape=(2, 8, 8))
    net.population("p", model=IF(), shape=(2, 3, 3))
    net.connect("img", "p", AvgPool2d(kernel=(2, 2)), name="pool")
    with pytest.raises(ConvGeometryError, match=r"gives output \(2, 4, 4\).*declared \(2, 3, 3\)"):
        verify(net)
    net = Network("flat")
    net.input("img", 8)
    net.population("p", model=IF(), shape=(2, 2, 2))
    net.connect("img", "p", AvgPool2d(kernel=(2, 2)), name="pool")
    with pytest.raises(ShapeMismatchError, match="needs a CHW source, but 'img' has shape"):
        verify(net)


def test_sparse_structure():
    net = base()
    sp = Sparse.from_dense(np.ones((2, 3)))
    net.connect("hidden", "out", Sparse(indptr=sp.indptr[:-1], indices=sp.indices,
                                        weight=sp.weight, n_post=2), name="csr")
    with pytest.raises(ShapeMismatchError, match=r"indptr has shape \(3,\), expected \(4,\)"):
        verify(net)
    net = base()
    idx = sp.indices.copy()
    idx[0] = 9
    net.connect("hidden", "out", Sparse(indptr=sp.indptr, indices=idx, weight=sp.weight,
                                        n_post=2), name="csr")
    with pytest.raises(ShapeMismatchError, match="postsynaptic index is outside 0..1"):
        verify(net)
    net = base()
    net.connect("hidden", "out", Dense(weight=[[1.0, 2.0, 3.0]] * 2), name="list")
    with pytest.raises(ParameterError, match="weight is a list, expected a numpy array"):
        verify(net)


def test_records_of_the_wrong_kind_are_named_errors():
    """A network edited by hand may hold anything: verify names it, never crashes."""
    import numpy as np

    from nmcompiler.ir import LIF, Dense, Network
    from nmcompiler.ir.errors import ParameterError

    def base():
        n = Network("n")
        n.input("in", 4)
        n.population("h", 3, LIF(lam=0.9))
        n.connect("in", "h", Dense(weight=np.ones((3, 4))))
        return n

    for edit in (lambda n: setattr(n, "probes", ("x",)),
                 lambda n: n.populations.__setitem__("h", 5),
                 lambda n: n.outputs.__setitem__("o", 5),
                 lambda n: setattr(n, "name", 5)):
        net = base()
        edit(net)
        with pytest.raises(ParameterError):
            verify(net)


@pytest.mark.parametrize("value", [1e39, -1e300])
def test_values_beyond_float32_range_are_refused(value):
    import numpy as np

    from nmcompiler import ir
    from nmcompiler.ir.errors import NonFiniteError

    net = ir.Network("big")
    net.input("in", 2)
    net.population("h", 2, ir.LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.connect("in", "h", ir.Dense(weight=np.array([[1.0, value], [0.0, 1.0]])), delay=1)
    with pytest.raises(NonFiniteError, match="float32 range"):
        ir.verify(net)
    net2 = ir.Network("big2")
    net2.input("in", 2)
    net2.population("h", 2, ir.LIF(alpha_u=0.5, lam=0.9, theta=value if value > 0 else 1.0,
                                   bias=0.0 if value > 0 else value))
    with pytest.raises(NonFiniteError, match="float32 range"):
        ir.verify(net2)
