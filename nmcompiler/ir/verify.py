"""Structural verification of a network (run before and after every pass).

:func:`verify` raises the first fault it finds, each kind its own exception type from
:mod:`nmcompiler.ir.errors`, with a message naming the object, what was expected, what was found and
a hint. It never asserts and never touches more than O(size of the arrays) work.
"""

from __future__ import annotations

import numbers

import numpy as np

from .connectivity import (
    CONNECTIVITY_TYPES,
    AvgPool2d,
    Conv2d,
    Dense,
    OneToOne,
    Sparse,
    SumPool2d,
    as_pair,
    conv_output_shape,
    pool_output_shape,
)
from .errors import (
    ConvGeometryError,
    DanglingReferenceError,
    DelayError,
    DuplicateNameError,
    EmptyPopulationError,
    NonFiniteError,
    ParameterError,
    ShapeMismatchError,
    ZeroDelayCycleError,
)
from .models import ARRAY_PARAMS, MODEL_TYPES, RF, Reset, model_fields
from .network import PROBE_VARS, Network, Population, Projection

__all__ = ["verify", "zero_delay_order", "effective_min_delay"]


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


#: the largest magnitude a weight or parameter may have: float32's largest finite value
#: (every framework trains and exports in float32; beyond it the products and squares the
#: quantiser and simulators form overflow float64)
MAX_MAGNITUDE = float(np.finfo(np.float32).max)


def _check_finite(arr: np.ndarray, what: str, obj: str) -> None:
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise NonFiniteError(
            f"{what} contains {bad} NaN or infinite value(s)",
            obj=obj,
            rule="finite values",
            need="finite",
            limit="finite",
            hint="check the trained weights or the conversion that produced them",
        )
    if arr.dtype.kind in "fc" and arr.size and float(np.max(np.abs(arr))) > MAX_MAGNITUDE:
        raise NonFiniteError(
            f"{what} holds {float(np.max(np.abs(arr))):.3g}, beyond the float32 range",
            obj=obj,
            rule="magnitude <= float32 max",
            need=f"|x| <= {MAX_MAGNITUDE:.4g}",
            limit=f"{MAX_MAGNITUDE:.4g}",
            hint="check the trained weights or the scale factor (w_in, r) that produced them",
        )


def _check_numeric_array(x: object, what: str, obj: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise ParameterError(
            f"{what} is a {type(x).__name__}, expected a numpy array",
            obj=obj,
            rule="array type",
            hint="pass np.asarray(...)",
        )
    if x.dtype.kind not in "biufc":
        raise ParameterError(
            f"{what} has dtype {x.dtype}, expected a numeric dtype",
            obj=obj,
            rule="numeric dtype",
            hint="convert with .astype(np.float64)",
        )
    _check_finite(x, what, obj)
    return x


def _check_population(pop: Population) -> None:
    where = f"population '{pop.name}'"
    if pop.size <= 0 or any(d <= 0 for d in pop.shape):
        raise EmptyPopulationError(
            f"{where} has shape {pop.shape} and so no neurons",
            obj=pop.name,
            rule="non-empty",
            need=">= 1 neuron",
            limit=pop.size,
            hint="give it at least one neuron or remove it",
        )
    model = pop.model
    if not isinstance(model, MODEL_TYPES):
        raise ParameterError(
            f"{where} has unknown neuron model {type(model).__name__}",
            obj=pop.name,
            rule="known model",
            hint="use one of " + ", ".join(t.__name__ for t in MODEL_TYPES),
        )
    own = model_fields(model)
    for name in ARRAY_PARAMS:
        if name not in own:
            continue
        value = own[name]
        if isinstance(value, np.ndarray):
            if value.ndim != 1 or value.shape[0] != pop.size:
                raise ShapeMismatchError(
                    f"{where}: parameter '{name}' has shape {value.shape}, expected a scalar "
                    f"or ({pop.size},)",
                    obj=pop.name,
                    rule="parameter shape",
                    need=(pop.size,),
                    limit=value.shape,
                    hint="give one value per neuron, flattened in C order",
                )
            _check_numeric_array(value, f"{where}: parameter '{name}'", pop.name)
            arr = value
        elif isinstance(value, numbers.Number) and not isinstance(value, bool):
            arr = np.asarray(value)
            _check_finite(arr, f"{where}: parameter '{name}'", pop.name)
        else:
            raise ParameterError(
                f"{where}: parameter '{name}' is a {type(value).__name__}, expected a number "
                "or an array",
                obj=pop.name,
                rule="parameter type",
                hint=f"pass {name}=<float> or an array of {pop.size}",
            )
        if arr.dtype.kind == "c" and not (name == "lam" and isinstance(model, RF)):
            raise ParameterError(
                f"{where}: parameter '{name}' is complex; only the resonate-and-fire model "
                "has a complex lam",
                obj=pop.name,
                rule="real parameter",
                hint="use RF(...) for a complex decay, or pass a real value",
            )
        _check_range(pop.name, name, arr)
    if not isinstance(model.reset, Reset):
        raise ParameterError(
            f"{where}: reset is {model.reset!r}, expected a Reset",
            obj=pop.name,
            rule="reset mode",
            hint="use Reset.HARD, Reset.SOFT or Reset.NONE",
        )
    for name, lo in (("refractory", 0), ("graded_max", 1), ("seed", 0)):
        value = getattr(model, name)
        if not _is_int(value) or value < lo:
            raise ParameterError(
                f"{where}: parameter '{name}' is {value!r}, expected an integer >= {lo}",
                obj=pop.name,
                rule=f"{name} >= {lo}",
                need=f">= {lo}",
                limit=value,
                hint=f"pass {name}={max(lo, 0)} or more",
            )
    noise = model.noise
    if not isinstance(noise, numbers.Real) or not np.isfinite(noise) or noise < 0:
        raise ParameterError(
            f"{where}: parameter 'noise' is {noise!r}, expected a finite number >= 0",
            obj=pop.name,
            rule="noise >= 0",
            hint="pass noise=0 for deterministic firing",
        )


def _check_range(obj: str, name: str, arr: np.ndarray) -> None:
    where = f"population '{obj}'"
    if name == "alpha_u":
        bad = (arr < 0) | (arr > 1)
        rule, hint = "0 <= alpha_u <= 1", "alpha_u is a per-step decay factor, e.g. exp(-1/tau)"
    elif name == "lam":
        bad = np.abs(arr) > 1 if arr.dtype.kind == "c" else (arr < 0) | (arr > 1)
        rule = "|lam| <= 1" if arr.dtype.kind == "c" else "0 <= lam <= 1"
        hint = "lam is a per-step decay factor; |lam| > 1 makes the neuron unstable"
    elif name == "theta":
        bad = ~(arr > 0)
        rule, hint = "theta > 0", "the threshold must be positive"
    else:
        return
    if np.any(bad):
        first = arr.reshape(-1)[np.flatnonzero(np.asarray(bad).reshape(-1))[0]]
        raise ParameterError(
            f"{where}: parameter '{name}' = {first!r} is out of range ({rule})",
            obj=obj,
            rule=rule,
            need=rule,
            limit=first,
            hint=hint,
        )


def effective_min_delay(proj: Projection) -> int:
    """Smallest total delay (projection + per-synapse) of any synapse of ``proj``."""
    d = int(proj.delay)
    extra = getattr(proj.conn, "delays", None)
    if extra is not None and np.size(extra):
        d += int(np.min(extra))
    return d


def _check_delay(proj: Projection, min_delay: int) -> None:
    where = f"projection '{proj.name}'"
    if not _is_int(proj.delay):
        raise DelayError(
            f"{where} has delay {proj.delay!r}, expected an integer number of steps",
            obj=proj.name,
            rule="integer delay",
            hint="delays are whole steps: round them (NIR import does this from dt)",
        )
    if proj.delay < 0:
        raise DelayError(
            f"{where} has a negative delay ({proj.delay})",
            obj=proj.name,
            rule="delay >= 0",
            need=">= 0",
            limit=proj.delay,
            hint="a spike cannot arrive before it is sent; use 0 for same-step delivery",
        )
    extra = getattr(proj.conn, "delays", None)
    if extra is not None:
        _check_numeric_array(extra, f"{where}: per-synapse delays", proj.name)
        if extra.dtype.kind not in "iu":
            raise DelayError(
                f"{where}: per-synapse delays have dtype {extra.dtype}, expected integers",
                obj=proj.name,
                rule="integer delay",
                hint="round them and cast with .astype(np.int64)",
            )
        if extra.size and int(extra.min()) < 0:
            raise DelayError(
                f"{where}: a per-synapse delay is negative ({int(extra.min())})",
                obj=proj.name,
                rule="delay >= 0",
                need=">= 0",
                limit=int(extra.min()),
                hint="a spike cannot arrive before it is sent",
            )
    dmin = effective_min_delay(proj)
    if dmin < min_delay:
        raise DelayError(
            f"{where} has delay {dmin} < {min_delay}, the smallest delay this target allows",
            obj=proj.name,
            rule=f"delay >= {min_delay}",
            need=dmin,
            limit=min_delay,
            hint="run the lower pass, which retimes zero-delay projections",
        )


def _check_conn(net: Network, proj: Projection) -> None:
    where = f"projection '{proj.name}'"
    conn = proj.conn
    n_pre, n_post = net.size_of(proj.pre), net.size_of(proj.post)
    if not isinstance(conn, CONNECTIVITY_TYPES):
        raise ParameterError(
            f"{where} has unknown connectivity {type(conn).__name__}",
            obj=proj.name,
            rule="known connectivity",
            hint="use one of " + ", ".join(t.__name__ for t in CONNECTIVITY_TYPES),
        )
    if isinstance(conn, Dense):
        w = _check_numeric_array(conn.weight, f"{where}: weight", proj.name)
        if w.shape != (n_post, n_pre):
            raise ShapeMismatchError(
                f"{where}: weight has shape {w.shape}, expected ({n_post}, {n_pre}) = "
                f"(size of '{proj.post}', size of '{proj.pre}')",
                obj=proj.name,
                rule="weight shape",
                need=(n_post, n_pre),
                limit=w.shape,
                hint="dense weights are (n_post, n_pre), as torch.nn.Linear",
            )
        if conn.delays is not None and conn.delays.shape != w.shape:
            raise ShapeMismatchError(
                f"{where}: delays have shape {conn.delays.shape}, expected {w.shape}",
                obj=proj.name,
                rule="delay shape",
                need=w.shape,
                limit=conn.delays.shape,
                hint="give one delay per weight",
            )
    elif isinstance(conn, Sparse):
        _check_sparse(proj, conn, n_pre, n_post)
    elif isinstance(conn, OneToOne):
        if n_pre != n_post:
            raise ShapeMismatchError(
                f"{where}: one-to-one needs equal sizes, found {n_pre} -> {n_post}",
                obj=proj.name,
                rule="equal sizes",
                need=n_pre,
                limit=n_post,
                hint="use Dense or Sparse between populations of different sizes",
            )
        w = conn.weight
        if isinstance(w, np.ndarray):
            _check_numeric_array(w, f"{where}: weight", proj.name)
            if w.shape not in ((), (n_post,)):
                raise ShapeMismatchError(
                    f"{where}: weight has shape {w.shape}, expected a scalar or ({n_post},)",
                    obj=proj.name,
                    rule="weight shape",
                    need=(n_post,),
                    limit=w.shape,
                    hint="one weight per neuron",
                )
        elif (not isinstance(w, numbers.Real) or not np.isfinite(w)
              or abs(float(w)) > MAX_MAGNITUDE):
            raise NonFiniteError(
                f"{where}: weight {w!r} is not a finite number within the float32 range",
                obj=proj.name,
                rule="finite values",
                hint="pass a finite float or an array",
            )
        if conn.delays is not None and conn.delays.shape != (n_post,):
            raise ShapeMismatchError(
                f"{where}: delays have shape {conn.delays.shape}, expected ({n_post},)",
                obj=proj.name,
                rule="delay shape",
                need=(n_post,),
                limit=conn.delays.shape,
                hint="give one delay per neuron",
            )
    else:
        _check_grid(net, proj)


def _check_sparse(proj: Projection, conn: Sparse, n_pre: int, n_post: int) -> None:
    where = f"projection '{proj.name}'"
    indptr = _check_numeric_array(conn.indptr, f"{where}: indptr", proj.name)
    indices = _check_numeric_array(conn.indices, f"{where}: indices", proj.name)
    w = _check_numeric_array(conn.weight, f"{where}: weight", proj.name)
    if indptr.ndim != 1 or indptr.shape[0] != n_pre + 1:
        raise ShapeMismatchError(
            f"{where}: indptr has shape {indptr.shape}, expected ({n_pre + 1},) for "
            f"{n_pre} presynaptic neurons of '{proj.pre}'",
            obj=proj.name,
            rule="CSR by presynaptic neuron",
            need=(n_pre + 1,),
            limit=indptr.shape,
            hint="build it with Sparse.from_coo or Sparse.from_dense",
        )
    if int(conn.n_post) != n_post:
        raise ShapeMismatchError(
            f"{where}: n_post is {conn.n_post}, but '{proj.post}' has {n_post} neurons",
            obj=proj.name,
            rule="n_post",
            need=n_post,
            limit=conn.n_post,
            hint="set n_post to the size of the target population",
        )
    nnz = w.shape[0] if w.ndim == 1 else -1
    if indices.ndim != 1 or w.ndim != 1 or indices.shape[0] != nnz:
        raise ShapeMismatchError(
            f"{where}: indices {indices.shape} and weight {w.shape} must be 1-D of equal length",
            obj=proj.name,
            rule="CSR arrays",
            hint="build it with Sparse.from_coo",
        )
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise ParameterError(
            f"{where}: indptr and indices must be integers",
            obj=proj.name,
            rule="integer indices",
            hint="cast with .astype(np.int64)",
        )
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        raise ShapeMismatchError(
            f"{where}: indptr must rise from 0 to {nnz} (found {int(indptr[0])} .. "
            f"{int(indptr[-1])})",
            obj=proj.name,
            rule="CSR indptr",
            need=nnz,
            limit=int(indptr[-1]),
            hint="build it with Sparse.from_coo",
        )
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= n_post):
        raise ShapeMismatchError(
            f"{where}: a postsynaptic index is outside 0..{n_post - 1}",
            obj=proj.name,
            rule="index range",
            need=f"< {n_post}",
            limit=int(indices.max()),
            hint=f"'{proj.post}' has {n_post} neurons",
        )
    if conn.delays is not None and conn.delays.shape != (nnz,):
        raise ShapeMismatchError(
            f"{where}: delays have shape {conn.delays.shape}, expected ({nnz},)",
            obj=proj.name,
            rule="delay shape",
            need=(nnz,),
            limit=conn.delays.shape,
            hint="give one delay per synapse",
        )


def _check_grid(net: Network, proj: Projection) -> None:
    where = f"projection '{proj.name}'"
    conn = proj.conn
    in_shape, out_shape = net.shape_of(proj.pre), net.shape_of(proj.post)
    kind = type(conn).__name__
    for label, shp, node in (("source", in_shape, proj.pre), ("target", out_shape, proj.post)):
        if len(shp) != 3:
            raise ShapeMismatchError(
                f"{where}: {kind} needs a CHW {label}, but '{node}' has shape {shp}",
                obj=proj.name,
                rule="CHW shape",
                need="(C, H, W)",
                limit=shp,
                hint=f"declare '{node}' with shape=(C, H, W)",
            )
    geom = ["stride", "padding"] + (["dilation"] if isinstance(conn, Conv2d) else ["kernel"])
    for g in geom:
        val = getattr(conn, g)
        if val is None:
            continue
        pair = as_pair(val)
        lo = 0 if g == "padding" else 1
        if min(pair) < lo:
            raise ConvGeometryError(
                f"{where}: {g} {pair} must be >= {lo}",
                obj=proj.name,
                rule=f"{g} >= {lo}",
                need=f">= {lo}",
                limit=pair,
                hint="use PyTorch's conventions",
            )
    if isinstance(conn, Conv2d):
        w = _check_numeric_array(conn.weight, f"{where}: weight", proj.name)
        if w.ndim != 4:
            raise ShapeMismatchError(
                f"{where}: conv weight has shape {w.shape}, expected 4-D OIHW",
                obj=proj.name,
                rule="OIHW",
                need="(C_out, C_in/groups, kH, kW)",
                limit=w.shape,
                hint="use PyTorch's Conv2d weight layout",
            )
        g = conn.groups
        if not _is_int(g) or g < 1 or w.shape[0] % g or w.shape[1] * g != in_shape[0]:
            raise ConvGeometryError(
                f"{where}: weight {w.shape} with groups={g} needs {w.shape[1] * g} input "
                f"channels, but '{proj.pre}' has {in_shape[0]}",
                obj=proj.name,
                rule="channels",
                need=w.shape[1] * g if _is_int(g) else g,
                limit=in_shape[0],
                hint="C_in must equal weight.shape[1] * groups and C_out divide by groups",
            )
        expect = conv_output_shape(in_shape, conn)  # type: ignore[arg-type]
    elif isinstance(conn, (SumPool2d, AvgPool2d)):
        expect = pool_output_shape(in_shape, conn)  # type: ignore[arg-type]
    else:  # pragma: no cover - closed set
        return
    if tuple(expect) != tuple(out_shape):
        raise ConvGeometryError(
            f"{where}: {kind} of input {in_shape} gives output {expect}, but '{proj.post}' "
            f"is declared {out_shape}",
            obj=proj.name,
            rule="output shape",
            need=expect,
            limit=out_shape,
            hint=f"declare '{proj.post}' with shape={expect} or fix stride/padding",
        )


def zero_delay_order(net: Network) -> list[str]:
    """Populations in an order where every zero-delay projection goes forwards.

    Raises :class:`ZeroDelayCycleError` naming the cycle if there is none.
    """
    names = list(net.populations)
    succ: dict[str, list[str]] = {n: [] for n in names}
    for proj in net.projections.values():
        if proj.pre in net.populations and effective_min_delay(proj) == 0:
            succ[proj.pre].append(proj.post)
    # iterative DFS with colours; report the first cycle found (deterministic order)
    colour = dict.fromkeys(names, 0)
    order: list[str] = []
    for root in names:
        if colour[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                colour[node] = 1
                path.append(node)
            if i < len(succ[node]):
                stack.append((node, i + 1))
                nxt = succ[node][i]
                if colour[nxt] == 1:
                    cyc = path[path.index(nxt):] + [nxt]
                    text = " -> ".join(cyc)
                    raise ZeroDelayCycleError(
                        f"projections of delay 0 form a cycle {text}",
                        obj=text,
                        rule="no zero-delay cycle",
                        need="delay >= 1 on one edge of the cycle",
                        limit=0,
                        hint="give one projection of the cycle a delay of 1 or more",
                    )
                if colour[nxt] == 0:
                    stack.append((nxt, 0))
            else:
                colour[node] = 2
                path.pop()
                order.append(node)
    order.reverse()
    return order


def _check_records(net: Network) -> None:
    """Every container holds records of its kind under string names (a network built by
    hand, or edited after it was built, may hold anything)."""
    from .network import Input, Output, Probe

    if not isinstance(net, Network):
        raise ParameterError(f"expected a Network, got {type(net).__name__}", obj="network",
                             rule="type", hint="build it with nmcompiler.ir.Network")
    if not isinstance(net.name, str):
        raise ParameterError(f"the network name is a {type(net.name).__name__}",
                             obj=str(net.name), rule="name type", hint="name it with a str")
    for attr, cls in (("inputs", Input), ("populations", Population),
                      ("projections", Projection), ("outputs", Output)):
        table = getattr(net, attr)
        if not isinstance(table, dict):
            raise ParameterError(f"network.{attr} is a {type(table).__name__}, not a dict",
                                 obj=attr, rule="record type", hint="use the Network methods")
        for key, rec in table.items():
            if not isinstance(key, str) or not isinstance(rec, cls):
                raise ParameterError(
                    f"network.{attr}[{key!r}] is a {type(rec).__name__}, expected a "
                    f"{cls.__name__} under a str name", obj=str(key), rule="record type",
                    hint="add records with the Network methods")
    if not isinstance(net.probes, tuple) or not all(isinstance(p, Probe) for p in net.probes):
        raise ParameterError("network.probes must be a tuple of Probe records",
                             obj="probes", rule="record type", hint="use Network.probe()")


def verify(net: Network, *, min_delay: int = 0) -> Network:
    """Check ``net`` and return it unchanged; raise the first structural fault found.

    Args:
        net: the network.
        min_delay: the smallest delay allowed (a target's; 0 = same-step delivery allowed
            where zero-delay projections form no cycle).
    """
    _check_records(net)
    seen = set(net.inputs) & set(net.populations)
    if seen:
        name = sorted(seen)[0]
        raise DuplicateNameError(
            f"'{name}' is both an input and a population",
            obj=name,
            rule="unique names",
            hint="rename one of them",
        )
    for key, node in list(net.populations.items()) + list(net.inputs.items()):
        if node.name != key:
            raise DuplicateNameError(
                f"'{node.name}' is stored under the name '{key}'",
                obj=node.name,
                rule="consistent names",
                hint="build networks with the builder methods",
            )
    for inp in net.inputs.values():
        if inp.size <= 0 or any(d <= 0 for d in inp.shape):
            raise EmptyPopulationError(
                f"input '{inp.name}' has shape {inp.shape} and so no channels",
                obj=inp.name,
                rule="non-empty",
                need=">= 1 channel",
                limit=inp.size,
                hint="give it at least one channel or remove it",
            )
    for pop in net.populations.values():
        _check_population(pop)
    for proj in net.projections.values():
        where = f"projection '{proj.name}'"
        if proj.pre not in net.populations and proj.pre not in net.inputs:
            raise DanglingReferenceError(
                f"{where} comes from '{proj.pre}', which is neither a population nor an input",
                obj=proj.name,
                rule="existing source",
                hint=_did_you_mean(proj.pre, list(net.populations) + list(net.inputs)),
            )
        if proj.post not in net.populations:
            what = "an input (inputs take no projections)" if proj.post in net.inputs else (
                "not a population")
            raise DanglingReferenceError(
                f"{where} goes to '{proj.post}', which is {what}",
                obj=proj.name,
                rule="existing target population",
                hint=_did_you_mean(proj.post, list(net.populations)),
            )
        _check_delay(proj, min_delay)
        _check_conn(net, proj)
    for out in net.outputs.values():
        if out.source not in net.populations:
            raise DanglingReferenceError(
                f"output '{out.name}' reads '{out.source}', which is not a population",
                obj=out.name,
                rule="existing population",
                hint=_did_you_mean(out.source, list(net.populations)),
            )
    for probe in net.probes:
        if probe.target not in net.populations:
            raise DanglingReferenceError(
                f"probe '{probe.key}' targets '{probe.target}', which is not a population",
                obj=probe.key,
                rule="existing population",
                hint=_did_you_mean(probe.target, list(net.populations)),
            )
        if probe.var not in PROBE_VARS:
            raise ParameterError(
                f"probe '{probe.key}' records unknown variable '{probe.var}'",
                obj=probe.key,
                rule="known variable",
                hint="record one of " + ", ".join(PROBE_VARS),
            )
    zero_delay_order(net)
    return net


def _did_you_mean(name: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, options, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if options:
        return "known names: " + ", ".join(options[:8]) + ("..." if len(options) > 8 else "")
    return "the network has none yet"
