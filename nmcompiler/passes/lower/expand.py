"""Step 1 of lowering: convolution and pooling projections become explicit synapses
where the target has no convolution hardware, and checks of its limits where it has."""

from __future__ import annotations

from typing import Any

from nmcompiler.ir.connectivity import (
    AvgPool2d,
    Conv2d,
    SumPool2d,
    as_pair,
)
from nmcompiler.ir.errors import FitError
from nmcompiler.ir.expand import conv_to_sparse, pool_to_sparse
from nmcompiler.ir.network import Network, Projection

from ...targets import Target
from ...targets.families.speck import speck_kernel


# =========================================================================== 1. expansion
def check_conv_limits(net: Network, proj: Projection, target: Target) -> None:
    """Raise a FitError if the convolution of ``proj`` exceeds the target's convolution limits."""
    lim = target.convolution
    if lim is None:
        return
    conn = proj.conn
    where = f"projection '{proj.name}'"

    def fail(rule: str, need: Any, limit: Any, hint: str) -> None:
        raise FitError(
            f"{where} needs {rule} {need}; {target.name} allows {limit}", obj=proj.name,
            rule=rule, need=need, limit=limit, hint=hint,
        )

    _, hi, wi = net.shape_of(proj.pre)
    _, ho, wo = net.shape_of(proj.post)
    if hi > lim.max_input_size[0] or wi > lim.max_input_size[1]:
        fail("input size", (hi, wi), lim.max_input_size, "downsample the input first")
    if ho > lim.max_output_size[0] or wo > lim.max_output_size[1]:
        fail("output size", (ho, wo), lim.max_output_size,
             "use a larger stride or pooling before this layer")
    from_input = proj.pre in net.inputs  # the DVS layer pools, rectangles too
    if isinstance(conn, Conv2d):
        # a convolution that contains a sum pooling (SumPool2d -> Conv2d composed by the
        # NIR importer) is checked as sinabs maps it: the pooling on the way in, then the
        # smaller kernel (targets.families.speck.conv_pool_factor)
        got = speck_kernel(conn, net.shape_of(proj.pre), tuple(lim.pooling_sizes), from_input)
        w, (py, px) = got if got is not None else (conn.weight, (1, 1))
        kh, kw = w.shape[2:]
        stride = (as_pair(conn.stride)[0] // py, as_pair(conn.stride)[1] // px)
        padding = (as_pair(conn.padding)[0] // py, as_pair(conn.padding)[1] // px)
        if kh != kw or kh > lim.max_kernel_size:
            fail("kernel", (kh, kw), f"square <= {lim.max_kernel_size}",
                 "use a square kernel within the limit")
        for s in stride:
            if s not in lim.strides:
                fail("stride", stride, lim.strides, "use an allowed stride")
        if max(padding) > lim.max_padding:
            fail("padding", padding, lim.max_padding, "pad less")
        if conn.weight.shape[0] > lim.max_channels:
            fail("output channels", conn.weight.shape[0], lim.max_channels,
                 "split the layer into channel groups")
    else:
        k = as_pair(conn.kernel)
        if (k[0] != k[1] and not from_input) or k[0] not in lim.pooling_sizes or \
                k[1] not in lim.pooling_sizes:
            fail("pooling size", k, lim.pooling_sizes,
                 "use an allowed sum-pooling size (square except on the input: the DVS "
                 "layer pools rectangles)")


def expand_convolutions(net: Network, *, keep_zeros: bool = False) -> tuple[Network, dict]:
    """Replace every convolution / pooling projection of ``net`` by the equivalent Sparse."""
    projs = dict(net.projections)
    done = []
    for name, proj in net.projections.items():
        if isinstance(proj.conn, (Conv2d, SumPool2d, AvgPool2d)):
            if isinstance(proj.conn, Conv2d):
                sp = conv_to_sparse(proj.conn, net.shape_of(proj.pre), keep_zeros=keep_zeros)
            else:
                sp = pool_to_sparse(proj.conn, net.shape_of(proj.pre))
            projs[name] = Projection(name=name, pre=proj.pre, post=proj.post, conn=sp,
                                     delay=proj.delay)
            done.append({"projection": name, "kind": type(proj.conn).__name__,
                         "synapses": sp.n_synapses()})
    if not done:
        return net, {"expanded": []}
    return net.replace(projections=projs), {"expanded": done}
