"""Run a network lowered by nmcompiler's PyNN backend on NEST or SpiNNaker (standalone).

Shipped as ``run_pynn.py`` beside ``network.npz`` by ``nmc deploy BUILD --backend pynn``;
needs only numpy and PyNN 0.13 with a simulator (``pyNN.nest``, or sPyNNaker's
``pyNN.spiNNaker``)::

    python run_pynn.py --simulator nest [--input spikes.npz] [--steps N] [--out run.npz]
    python run_pynn.py --simulator spinnaker            # on a board (sPyNNaker's config)
    python run_pynn.py --simulator spinnaker --virtual-board 5 --mapping-out mapping.json

``spikes.npz`` holds one ``(T, n)`` or ``(T, B, n)`` array of 0/1 spikes per input name
(absent inputs are silent). ``run.npz`` gets ``"pop/s"`` spike arrays ``(T, B, n)`` and
``"pop/v"`` voltages (raw s16.15 units, the compiled network's) for what the network
records, and a JSON ``meta``.

``network.npz`` (written by ``nmcompiler.backends.spinnaker.lower.write_graph``): a JSON
``meta`` (populations with their PyNN cell type and NEST retiming shift, projections,
inputs, outputs, records, info) and arrays: ``pop{i}.{tau_m, cm, v_thresh, v_reset,
tau_refrac, i_offset, tau_syn, weight_scale_nest, weight_scale_spinnaker}`` per neuron
(PyNN units: ms, nF, mV, nA), ``pop{i}.block`` (every neuron's slice),
``block.{pop, core, x, y, p, n}`` (slices: the chip and processor nmcompiler placed
them on), ``proj{j}.{pre, post, weight, delay, nest_delay}`` (synapse lists; weight in
mV, multiplied by the post neuron's ``weight_scale_<simulator>``; a negative weight is an
inhibitory synapse; delays in steps).

On SpiNNaker every slice is its own Population of at most 256 neurons, pinned with
``add_placement_constraint(x, y, p)`` to the chip and core nmcompiler chose, and
``set_number_of_neurons_per_core`` is the largest slice. On NEST every compiled population
is one Population; the run is retimed (populations run ``shift`` steps late, synapses use
``nest_delay``) so that NEST's ``iaf_psc_exp``, which applies a current one step after
the spike arrives, matches the step the spike reaches SpiNNaker's neuron
(docs/spinnaker_backend.md).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: NEST's initial V_m (mV), the resting potential of every cell on NEST
NEST_V0 = -70.0
CELL_PARAMS = ("tau_m", "cm", "v_thresh", "v_reset", "tau_refrac", "i_offset", "tau_syn")
VIRTUAL_CFG = """[Machine]
virtual_board = True
version = {version}
width = {size}
height = {size}

[Mode]
mode = Info

[Mapping]
router_table_compress_as_far_as_possible = True

[Reports]
write_router_reports = False
"""


def load_network(path):
    """The network description: (meta, arrays)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: np.array(z[k]) for k in z.files if k != "meta"}
    return meta, arrays


def load_inputs(path, meta, steps):
    """``{input name: (T, B, n) int}``, checked against the network's inputs."""
    sizes = {d["name"]: int(d["n"]) for d in meta["inputs"]}
    out = {}
    if path:
        with np.load(path, allow_pickle=False) as z:
            for k in z.files:
                if k not in sizes:
                    sys.exit(f"input '{k}' is not an input of the network "
                             f"(inputs: {', '.join(sizes) or 'none'})")
                a = np.asarray(z[k])
                a = a[:, None, :] if a.ndim == 2 else a
                if a.ndim != 3 or a.shape[2] != sizes[k]:
                    sys.exit(f"input '{k}' has shape {a.shape}; need (T, {sizes[k]}) "
                             f"or (T, B, {sizes[k]})")
                if np.any((a != 0) & (a != 1)):
                    sys.exit(f"input '{k}' holds values other than 0 and 1; PyNN's "
                             "SpikeSourceArray sends binary spikes")
                out[k] = a
    if steps is None:
        steps = min((a.shape[0] for a in out.values()), default=0)
        if not steps:
            sys.exit("give --steps N (no input file to take the length from)")
    batch = {a.shape[1] for a in out.values()}
    if len(batch) > 1:
        sys.exit(f"inputs have different batch sizes {sorted(batch)}")
    b = batch.pop() if batch else 1
    for k, n in sizes.items():
        if k not in out:
            out[k] = np.zeros((steps, b, n), dtype=np.int8)
        elif out[k].shape[0] < steps:
            sys.exit(f"input '{k}' has {out[k].shape[0]} steps; {steps} requested")
        out[k] = out[k][:steps]
    return out, steps, b


def import_simulator(name):
    """The PyNN simulator module for ``name`` (``nest`` or ``spinnaker``)."""
    if name == "nest":
        import pyNN.nest as sim
    elif name == "spinnaker":
        import pyNN.spiNNaker as sim
    else:
        sys.exit(f"unknown simulator '{name}' (nest or spinnaker)")
    return sim


class Net:
    """The PyNN objects of one network build."""

    def __init__(self, sim, simulator, meta, arrays, steps, own_mapping=True):
        self.sim, self.simulator, self.meta, self.a = sim, simulator, meta, arrays
        self.nest = simulator == "nest"
        #: sPyNNaker: one Population per slice, pinned (else sPyNNaker maps by itself)
        self.sliced = not self.nest and own_mapping
        info = meta["info"]
        self.dt = float(info.get("dt_ms", 1.0))
        self.steps = steps
        pops = meta["populations"]
        # NEST: everything one step later still (pyNN.nest sends a source's spike at time
        # tau through a parrot neuron, so tau >= min_delay + dt: step 0 needs a shift)
        # (+2: the bias sources below send at (k + 1 - 1) dt for step k >= shift)
        self.shift = {p["name"]: (int(p["shift"]) + 2 if self.nest else 0) for p in pops}
        self.shift.update({d["name"]: (int(d["shift"]) + 2 if self.nest else 0)
                           for d in meta["inputs"]})
        self.max_shift = max(self.shift.values(), default=0)
        self.v0 = NEST_V0 if self.nest else 0.0
        self.parts = {}    # population -> [(PyNN population, global neuron indices)]
        self.part_of = {}  # population -> (part index per neuron, local index per neuron)
        self.sources = {}  # input name -> SpikeSourceArray
        self.pinned, self.unpinned = {}, []  # sPyNNaker: label -> [x, y, p]; labels
        self.late_offsets = []  # NEST: (population, i_offset) set at its shifted step 0

    # ------------------------------------------------------------------ build
    def build(self, inputs_b0):
        """Create the populations and spike sources for inputs ``inputs_b0`` (batch 0)."""
        sim, a = self.sim, self.a
        self.setup()
        types = {p["celltype"] for p in self.meta["populations"]}
        blocks = {k: a[f"block.{k}"] for k in ("pop", "core", "x", "y", "p", "n")}
        pin = (self.sliced and self.meta["info"].get("machine") == "spinnaker"
               and blocks["x"].size and bool(np.all(blocks["x"] >= 0)))
        app_procs = self.application_processors() if pin else {}
        self.pinned, self.unpinned = {}, []
        if not self.nest:
            npc = max(1, int(blocks["n"].max(initial=1))) if self.sliced else 256
            for t in sorted(types):
                sim.set_number_of_neurons_per_core(getattr(sim, t), npc)
        for i, p in enumerate(self.meta["populations"]):
            name, n = p["name"], int(p["n"])
            celltype = getattr(sim, p["celltype"])
            params = self.cell_params(i, p)
            bias_mv = a[f"pop{i}.bias_mv"]
            if not self.sliced:
                groups = [np.arange(n)]
            else:
                blk = a[f"pop{i}.block"]
                groups = [np.flatnonzero(blk == b) for b in np.unique(blk)]
            parts, part_idx, local = [], np.zeros(n, dtype=np.int64), np.zeros(n, np.int64)
            for g_i, idx in enumerate(groups):
                cell = celltype(**{k: v[idx] for k, v in params.items()})
                label = name if len(groups) == 1 else f"{name}#{g_i}"
                pop = sim.Population(int(idx.size), cell, label=label,
                                     initial_values={"v": self.v0})
                if pin:
                    b = int(a[f"pop{i}.block"][idx[0]])
                    x, y, slot = int(blocks["x"][b]), int(blocks["y"][b]), int(blocks["p"][b]) - 1
                    procs = app_procs.get((x, y), [])
                    if slot < len(procs):
                        pop.add_placement_constraint(x, y, procs[slot])
                        self.pinned[label] = [x, y, procs[slot]]
                    else:
                        self.unpinned.append(label)
                parts.append((pop, idx))
                part_idx[idx] = g_i
                local[idx] = np.arange(idx.size)
            self.parts[name] = parts
            self.part_of[name] = (part_idx, local)
            if self.nest and p["celltype"] == "IF_curr_delta":
                self.bias_source(name, bias_mv)
        for d in self.meta["inputs"]:
            name, n = d["name"], int(d["n"])
            src = sim.Population(n, sim.SpikeSourceArray(
                spike_times=self.spike_times(name, inputs_b0[name])), label=name)
            self.sources[name] = src
            self.parts[name] = [(src, np.arange(n))]
            self.part_of[name] = (np.zeros(n, np.int64), np.arange(n))
        self.connect()

    def setup(self):
        """``sim.setup`` with the time step, and on NEST the delay range of the network."""
        sim, a, dt = self.sim, self.a, self.dt
        max_delay = 1
        for j, _ in enumerate(self.meta["projections"]):
            d = a[f"proj{j}.nest_delay" if self.nest else f"proj{j}.delay"]
            if d.size:
                max_delay = max(max_delay, int(d.max()))
        if self.nest:
            sim.setup(timestep=dt, min_delay=dt, max_delay=(max_delay + 1) * dt,
                      spike_precision="on_grid")
        else:
            sim.setup(timestep=dt)

    def cell_params(self, i, p):
        """The PyNN cell parameters of population ``p`` (index ``i``) for this simulator."""
        a, n = self.a, int(p["n"])
        name = p["name"]
        params = {k: a[f"pop{i}.{k}"] for k in CELL_PARAMS}
        if self.nest:
            # a population runs shift[P] steps late on NEST: its bias must start then.
            # IF_curr_delta: NEST's iaf_psc_delta adds I_e through P30 = (1 - P33)
            # tau_m / C, which is 0 without leak, so the bias arrives as a delta synapse
            # from a source firing in every step (exact, silent while refractory);
            # IF_curr_exp: i_offset is set when the population's step 0 comes
            # (run_retimed)
            if p["celltype"] == "IF_curr_exp" and np.any(params["i_offset"] != 0):
                self.late_offsets.append((name, params["i_offset"]))
            params["i_offset"] = np.zeros(n)
        if p["celltype"] == "IF_curr_exp":
            params["tau_syn_E"] = params["tau_syn_I"] = params.pop("tau_syn")
        else:
            params.pop("tau_syn")
        # pyNN.nest 0.13 cannot set IF_curr_delta's initial v (no variable map): NEST
        # starts V_m at -70 mV, so on NEST every voltage is taken relative to that
        params["v_rest"] = np.full(n, self.v0)
        params["v_thresh"] = params["v_thresh"] + self.v0
        params["v_reset"] = params["v_reset"] + self.v0
        if not self.nest:
            # sPyNNaker keeps parameters in s16.15: a never-leaking neuron's tau_m
            params["tau_m"] = np.minimum(params["tau_m"], 32767.0)
        return params

    def application_processors(self):
        """{(x, y): processors sPyNNaker leaves to applications}, in order: the chip's
        placeable processors less the extra monitor (first placeable one, when
        ``enable_advanced_monitor_support``) and, on an Ethernet chip, the data speed-up
        gatherer (the next one). Our slot k goes to the k-th; a chip with fewer
        (a virtual SpiNN-5 board has 8 chips of 17 processors, like real boards) leaves
        the slots beyond unpinned (listed in the mapping report)."""
        from spinn_utilities.config_holder import get_config_bool

        machine = self.sim.get_machine()
        monitors = get_config_bool("Machine", "enable_advanced_monitor_support")
        eth = {(c.x, c.y) for c in machine.ethernet_connected_chips}
        out = {}
        for chip in machine.chips:
            procs = sorted(chip.placable_processors_ids)
            skip = (1 + ((chip.x, chip.y) in eth)) if monitors else 0
            out[(chip.x, chip.y)] = procs[skip:]
        return out

    def run_retimed(self):
        """Run every step; on NEST set each IF_curr_exp population's i_offset when its
        (shifted) step 0 begins, and clear them again for the next batch."""
        sim, dt = self.sim, self.dt
        total = (self.steps + self.max_shift + 1) * dt
        if not self.nest or not self.late_offsets:
            sim.run(total)
            return
        by_shift = {}
        for name, off in self.late_offsets:
            by_shift.setdefault(self.shift[name], []).append((name, off))
        for name, _ in self.late_offsets:
            self.parts[name][0][0].set(i_offset=0.0)
        for sh in sorted(by_shift):
            # pyNN.nest's run_until(t) leaves NEST one step further than t (measured:
            # a bias set after run_until(sh dt) acts from step sh + 1), hence sh - 1
            sim.run_until((sh - 1) * dt)
            for name, off in by_shift[sh]:
                self.parts[name][0][0].set(i_offset=off)
        sim.run_until(total)

    def bias_source(self, name, bias_mv):
        """NEST: one source firing in every step of population ``name``, its synapses
        carrying each neuron's bias (mV) with delay 1."""
        sim, dt = self.sim, self.dt
        nz = np.flatnonzero(bias_mv != 0)
        if not nz.size:
            return
        sh = self.shift[name]
        from pyNN.parameters import Sequence

        times = Sequence([k * dt for k in range(sh, sh + self.steps)])
        src = sim.Population(1, sim.SpikeSourceArray(spike_times=[times]),
                             label=f"{name}#bias")
        (pop, _), = self.parts[name]
        for receptor, sel in (("excitatory", nz[bias_mv[nz] > 0]),
                              ("inhibitory", nz[bias_mv[nz] < 0])):
            if sel.size:
                conn = np.column_stack([np.zeros(sel.size), sel, bias_mv[sel],
                                        np.full(sel.size, dt)])
                sim.Projection(src, pop, sim.FromListConnector(
                    conn, column_names=["weight", "delay"]), sim.StaticSynapse(),
                    receptor_type=receptor, label=f"{name}#bias-{receptor}")

    def spike_times(self, name, x):
        """SpikeSourceArray times of one input's (T, n) spikes."""
        t, i = np.nonzero(np.asarray(x) != 0)
        # NEST: a source spike at time (t + 1 + shift) dt reaches a neuron with delay d
        # in the step its own spikes of step t would; sPyNNaker sends time t in step t
        off = (1 + self.shift[name]) if self.nest else 0
        times = [[] for _ in range(np.asarray(x).shape[1])]
        for tt, ii in zip(t.tolist(), i.tolist(), strict=True):
            times[ii].append((tt + off) * self.dt)
        if not self.nest:
            # sPyNNaker 7.4's density check fails on a list of empty lists
            return times if any(times) else []
        from pyNN.parameters import Sequence

        return [Sequence(v) for v in times]

    def connect(self):
        """Create the projections from the lowered synapse lists, weights scaled per simulator."""
        sim, a = self.sim, self.a
        sizes = {p["name"]: int(p["n"]) for p in self.meta["populations"]}
        scale_key = "weight_scale_nest" if self.nest else "weight_scale_spinnaker"
        index = {p["name"]: i for i, p in enumerate(self.meta["populations"])}
        for j, c in enumerate(self.meta["projections"]):
            pre, post = a[f"proj{j}.pre"], a[f"proj{j}.post"]
            if not pre.size:
                continue
            w = a[f"proj{j}.weight"] * a[f"pop{index[c['post']]}.{scale_key}"][post]
            d = a[f"proj{j}.nest_delay" if self.nest else f"proj{j}.delay"] * self.dt
            pp, pl = self.part_of[c["pre"]]
            qp, ql = self.part_of[c["post"]]
            inh = w < 0
            key = (pp[pre] * len(self.parts[c["post"]]) + qp[post]) * 2 + inh
            order = np.argsort(key, kind="stable")
            ks = key[order]
            cuts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
            for s, e in zip(cuts[:-1], cuts[1:], strict=True):
                sel = order[s:e]
                k = int(ks[s])
                neg, rest = k % 2, k // 2
                pi, qi = divmod(rest, len(self.parts[c["post"]]))
                ww = w[sel] if self.nest else np.abs(w[sel])
                conn = np.column_stack([pl[pre[sel]], ql[post[sel]], ww, d[sel]])
                sim.Projection(self.parts[c["pre"]][pi][0], self.parts[c["post"]][qi][0],
                               sim.FromListConnector(conn, column_names=["weight", "delay"]),
                               sim.StaticSynapse(),
                               receptor_type="inhibitory" if neg else "excitatory",
                               label=f"{c['name']}[{pi},{qi}]{'-' if neg else '+'}")
        del sizes

    def record(self):
        """Record the spikes and voltages the network file asks for."""
        types = {p["name"]: p["celltype"] for p in self.meta["populations"]}
        for key in self.meta["records"]:
            pop, _, var = key.rpartition("/")
            if var == "v" and self.nest and types[pop] == "IF_curr_delta":
                sys.exit(f"pyNN.nest 0.13 cannot record v of IF_curr_delta ('{pop}'); "
                         "record its spikes, or run the network on the emulator")
            for part, _ in self.parts[pop]:
                part.record("spikes" if var == "s" else "v")

    def set_inputs(self, inputs_b):
        """Give every spike source the spike times of ``inputs_b`` (one batch entry)."""
        for name, src in self.sources.items():
            src.set(spike_times=self.spike_times(name, inputs_b[name]))

    def collect(self, sizes):
        """``{"pop/x": (T, n)}`` of the last run, in IR steps."""
        out = {}
        T, dt = self.steps, self.dt
        for key in self.meta["records"]:
            pop, _, var = key.rpartition("/")
            n, sh = sizes[pop], self.shift[pop]
            if var == "s":
                arr = np.zeros((T, n), dtype=np.int8)
            else:
                arr = np.zeros((T, n), dtype=np.float64)
            for part, idx in self.parts[pop]:
                block = part.get_data("spikes" if var == "s" else "v", clear=True)
                seg = block.segments[-1]
                if var == "s":
                    for st in seg.spiketrains:
                        j = idx[int(st.annotations["source_index"])]
                        # NEST stamps a spike of (shifted) step k at (k + 1) dt
                        k = np.rint(np.asarray(st.magnitude) / dt).astype(np.int64) - (
                            1 if self.nest else 0) - sh
                        k = k[(k >= 0) & (k < T)]
                        arr[k, j] = 1
                else:
                    for sig in seg.analogsignals:
                        m = np.asarray(sig.magnitude)
                        ch = np.asarray(sig.array_annotations.get(
                            "channel_index", np.arange(m.shape[1])), dtype=np.int64)
                        # sample at time (k + 1) dt = state after step k
                        rows = np.arange(T) + sh + (1 if self.nest else 0)
                        ok = rows < m.shape[0]
                        arr[np.flatnonzero(ok)[:, None], idx[ch][None, :]] = m[rows[ok]]
            if var == "v":
                arr = (arr - self.v0) * 2.0 ** int(self.meta["info"].get("fraction_bits", 15))
            out[key] = arr
        return out


def mapping_report(net):
    """sPyNNaker's placements and routing tables (after its compressor) as JSON data."""
    from spinn_front_end_common.data import FecDataView

    labels = {}
    for pop, parts in net.parts.items():
        for part, idx in parts:
            labels[part.label] = (pop, int(idx.min()) if idx.size else 0)
    places, system = [], 0
    for p in FecDataView.iterate_placemements():
        app = p.vertex.app_vertex
        if app is None or app.label not in labels:
            system += 1
            continue
        sl = p.vertex.vertex_slice
        places.append([app.label, int(sl.lo_atom), int(sl.hi_atom), p.x, p.y, p.p])
    places.sort()
    tables = {}
    for kind, getter in (("uncompressed", "get_uncompressed"),
                         ("precompressed", "get_precompressed")):
        try:
            t = getattr(FecDataView, getter)()
        except Exception:  # noqa: BLE001 - not every run has every table
            continue
        tables[kind] = {f"{rt.x},{rt.y}": rt.number_of_entries for rt in t.routing_tables}
    try:
        # sPyNNaker's host pair compressor (its virtual_compressor; the on-chip default,
        # PairOnChipRouterCompression, runs the same algorithm), as far as possible
        from pacman.operations.router_compressors import pair_compressor

        t = pair_compressor()
        tables["compressed"] = {f"{rt.x},{rt.y}": rt.number_of_entries
                                for rt in t.routing_tables}
    except Exception as exc:  # noqa: BLE001 - report, do not fail the mapping run
        tables["compressed_error"] = repr(exc)
    return {"placements": places, "n_system_cores": system, "tables": tables,
            "pinned": net.pinned, "unpinned": net.unpinned}


def run(args):
    """Build the network, run every batch entry and write the recordings."""
    meta, arrays = load_network(args.network)
    inputs, steps, batch = load_inputs(args.input, meta, args.steps)
    sim = import_simulator(args.simulator)
    t0 = time.perf_counter()
    net = Net(sim, args.simulator, meta, arrays, steps,
              own_mapping=not args.spynnaker_mapping)
    net.build({k: v[:, 0] for k, v in inputs.items()})
    net.record()
    t1 = time.perf_counter()
    sizes = {p["name"]: int(p["n"]) for p in meta["populations"]}
    results = {k: [] for k in meta["records"]}
    mapping = None
    for b in range(batch):
        if b and args.simulator == "nest":
            # pyNN.nest has no full reset: a fresh kernel and build per sample
            sim.end()
            net = Net(sim, args.simulator, meta, arrays, steps)
            net.build({k: v[:, b] for k, v in inputs.items()})
            net.record()
        elif b:
            sim.reset()
            net.set_inputs({k: v[:, b] for k, v in inputs.items()})
        net.run_retimed()
        if args.simulator == "spinnaker" and b == 0 and args.mapping_out:
            mapping = mapping_report(net)
        if args.simulator == "nest" or not args.virtual_board:
            for k, v in net.collect(sizes).items():
                results[k].append(v)
    t2 = time.perf_counter()
    sim.end()
    out = {k: np.stack(v, axis=1) for k, v in results.items() if v}
    info = {"simulator": args.simulator, "steps": steps, "batch": batch,
            "build_seconds": t1 - t0, "run_seconds": t2 - t1,
            "nest_late_synapses": meta["info"].get("nest_late_synapses", 0)}
    if args.out:
        np.savez(args.out, meta=np.array(json.dumps(info)), **out)
    if mapping is not None:
        Path(args.mapping_out).write_text(json.dumps(mapping))
    if not args.quiet:
        for k, v in out.items():
            print(f"{k}: shape {v.shape}, {'spikes' if k.endswith('/s') else 'sum'} "
                  f"{float(v.sum()):g}")
        print(f"{args.simulator}: built in {t1 - t0:.2f} s, ran {steps} steps x {batch} "
              f"in {t2 - t1:.2f} s")
    return out


def main(argv=None):
    """Command line entry point of the runner."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    ap.add_argument("--network", default=str(here / "network.npz"))
    ap.add_argument("--simulator", choices=["nest", "spinnaker"], default="nest")
    ap.add_argument("--input", help=".npz: one (T, n) or (T, B, n) 0/1 array per input")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--out", default="run_pynn_out.npz")
    ap.add_argument("--virtual-board", type=int, metavar="VERSION",
                    help="sPyNNaker without a board: map on a virtual machine (5 = SpiNN-5, "
                         "3 = SpiNN-3) with the config in a temporary XDG_CONFIG_HOME and "
                         "the reports in a temporary folder; nothing is executed")
    ap.add_argument("--mapping-out", help="sPyNNaker: write placements and routing table "
                    "sizes (JSON) here")
    ap.add_argument("--spynnaker-mapping", action="store_true",
                    help="sPyNNaker: one Population per compiled population, 256 neurons "
                         "per core, no placement constraints (sPyNNaker partitions and "
                         "places by itself)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.virtual_board and args.simulator != "spinnaker":
        sys.exit("--virtual-board is for --simulator spinnaker")
    if not args.virtual_board:
        return run(args)
    for attr in ("network", "input", "out", "mapping_out"):
        if getattr(args, attr):
            setattr(args, attr, str(Path(getattr(args, attr)).resolve()))
    # config and reports in a temporary folder, removed at exit after sPyNNaker's own exit
    # handlers (registered later, so run earlier), which still write into reports/
    tmp = Path(tempfile.mkdtemp(prefix="run_pynn_spinnaker_"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    cfg = tmp / "config"
    work = tmp / "work"
    cfg.mkdir()
    work.mkdir()
    (cfg / ".spynnaker.cfg").write_text(VIRTUAL_CFG.format(
        version=args.virtual_board, size=8 if args.virtual_board == 5 else 2))
    os.environ["XDG_CONFIG_HOME"] = str(cfg)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(work)
    return run(args)


if __name__ == "__main__":
    main()
