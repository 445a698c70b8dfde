"""Distributed emulation equals the single-process run (docs/scale.md, "Emulation beyond
one machine"): outputs, probes, counters, time and energy, bit for bit, on multi-chip
networks with recurrence across chips and delays > 1, with the chips spread over 2-4
parts, and with a batch split over workers (data parallel)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmcompiler import ir
from nmcompiler.api import compile as compile_network
from nmcompiler.api import resolve_target
from nmcompiler.backends.emulator import EmulatorBackend, engine_for
from nmcompiler.backends.emulator.distributed import (
    _keep_link,
    chip_groups,
    run_distributed,
)
from nmcompiler.backends.emulator.worker import PartRunner
from nmcompiler.compare import derive_target
from nmcompiler.ir.errors import BackendError, ConfigError, UsageError

distributed = pytest.importorskip("distributed")

STEPS = 24
REPO = Path(__file__).resolve().parents[3]


def network(seed: int, *, sizes=(300, 400, 300), graded: bool = False, noise: float = 0.0,
            zero_delay: bool = False) -> tuple[ir.Network, dict]:
    """Recurrent populations, every pair connected both ways (so across chips), integer
    weights, projection delays 1..3 plus per-synapse delays 0..2 on some projections."""
    rng = np.random.default_rng(seed)
    net = ir.Network(f"dist{seed}")
    net.input("in", 20)
    names = []
    for k, n in enumerate(sizes):
        g = graded and k == 1
        net.population(f"p{k}", n, ir.LIF(alpha_u=0.5, lam=0.75, theta=4.0,
                                           refractory=k % 2, graded=g, graded_max=3 if g else 1,
                                           noise=noise if k == 2 else 0.0, seed=seed))
        names.append(f"p{k}")
    net.connect("in", "p0", ir.Dense(weight=rng.integers(0, 4, (sizes[0], 20)).astype(float)),
                delay=1)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            w = np.where(rng.random((sizes[j], sizes[i])) < 0.05,
                         rng.integers(-2, 4, (sizes[j], sizes[i])), 0).astype(float)
            conn = ir.Sparse.from_dense(w)
            if (i + j) % 2:
                conn = ir.Sparse(indptr=conn.indptr, indices=conn.indices, weight=conn.weight,
                                 n_post=conn.n_post,
                                 delays=rng.integers(0, 3, conn.weight.shape[0]))
            d = 0 if (zero_delay and j == i + 1) else int(rng.integers(1, 4))
            net.connect(a, b, conn, delay=d)
    for nm in names:
        net.output(nm)
    net.probe("p1", "v")
    x = (rng.random((STEPS, 20)) < 0.3).astype(float)
    return ir.verify(net), {"in": x}


def compiled(target, cap: int, **kw):
    net, inputs = network(1, **kw)
    tgt = resolve_target(target)[0] if isinstance(target, str) else target
    return compile_network(net, derive_target(tgt, max_neurons_per_core=cap), seed=0), inputs


@pytest.fixture(scope="module")
def emulator20(tmp_path_factory):
    """The generic emulator target on a 5 x 4 mesh of chips (20 chips)."""
    from nmcompiler.targets import load_target

    text = (REPO / "nmcompiler" / "hw_configs" / "emulator.toml").read_text()
    text = re.sub(r"^chip_grid = \{ value = \[2, 2\]", "chip_grid = { value = [5, 4]", text,
                  flags=re.M)
    text = re.sub(r"^chips_per_system = \{ value = 4,", "chips_per_system = { value = 20,",
                  text, flags=re.M)
    text = re.sub(r'^name = "[^"]+"', 'name = "emulator20"', text, flags=re.M)
    path = tmp_path_factory.mktemp("tgt") / "emulator20.toml"
    path.write_text(text)
    return load_target(path)


@pytest.fixture(scope="module")
def halapoint():
    """Loihi 2 arithmetic, 16 chips of Hala Point (one neuron per core)."""
    return compiled("loihi2:halapoint", 1)


@pytest.fixture(scope="module")
def generic(emulator20):
    """The generic arithmetic on 16 emulator chips: graded spikes and threshold noise."""
    return compiled(emulator20, 1, graded=True, noise=0.7)


def assert_same(ref, got) -> None:
    """Every output, probe, counter and cost figure identical."""
    assert ref.outputs.keys() == got.outputs.keys()
    for k in ref.outputs:
        np.testing.assert_array_equal(got.outputs[k], ref.outputs[k], err_msg=k)
    for k in ref.probes:
        np.testing.assert_array_equal(got.probes[k], ref.probes[k], err_msg=k)
    for f in ("sops", "neuron_updates", "spikes_sent", "messages", "link_hops", "step_time_s",
              "step_energy_j"):
        a, b = getattr(ref.counters, f), getattr(got.counters, f)
        assert (a is None) == (b is None), f
        if a is not None:
            assert a.shape == b.shape, f
            np.testing.assert_array_equal(b, a, err_msg=f)
    assert got.counters.energy_j == ref.counters.energy_j
    for k in ("synaptic_events", "spikes", "local_deliveries", "input_messages",
              "counters_per_step", "link_hops_per_step", "float32_accumulation",
              "populations"):
        assert got.info.get(k) == ref.info.get(k), k
    for k in ("noc_latency_s", "compute_time_s"):
        np.testing.assert_array_equal(got.info[k], ref.info[k], err_msg=k)


def test_the_test_networks_span_many_chips(halapoint, generic):
    for cn, _ in (halapoint, generic):
        cpc = cn.target.topology.cores_per_chip
        chips = np.unique(np.asarray(cn.placement.core) // cpc).shape[0]
        assert 10 <= chips <= 40
        groups = chip_groups(cn, 4)
        assert len(groups) == 4
        assert np.array_equal(np.sum(groups, axis=0), np.ones(cn.partition.n_cores))


@pytest.mark.parametrize("parts", [2, 4])
def test_chips_over_parts_equal_one_process(halapoint, parts):
    cn, inputs = halapoint
    ref = EmulatorBackend().run(cn, inputs, STEPS)
    got = run_distributed(cn, inputs, STEPS, workers=parts, in_process=True)
    assert_same(ref, got)
    d = got.info["distributed"]
    assert d["parts"] == parts and d["block_steps"] >= 1
    assert d["exchanged_bytes"] > 0
    assert sum(d["part_neurons"]) == sum(p.size for p in cn.network.populations.values())


@pytest.mark.parametrize("parts", [3])
def test_graded_noisy_network_with_probes_over_parts(generic, parts):
    cn, inputs = generic
    probes = ("p2.spikes", "p0.u")
    ref = EmulatorBackend().run(cn, inputs, STEPS, probes=probes)
    got = run_distributed(cn, inputs, STEPS, workers=parts, in_process=True, probes=probes)
    assert_same(ref, got)
    assert ref.outputs["p2"].any() and ref.outputs["p1"].max() > 1  # noise and payloads


def test_spinnaker_multicast_board_over_parts():
    cn, inputs = compiled("spinnaker:spinn5x12", 4)
    ref = EmulatorBackend().run(cn, inputs, STEPS)
    assert_same(ref, run_distributed(cn, inputs, STEPS, workers=3, in_process=True))


@pytest.mark.parametrize("board", ["spinnaker:spinn5x12", "halapoint"])
def test_run_totals_beyond_the_counter_budget_over_parts(board, halapoint, monkeypatch):
    """Beyond ``Engine.COUNTER_BYTES`` both runs keep run totals: link hops from the
    multicast trees (SpiNNaker) or the unicast routes (Loihi 2), and the per-step hop
    energy summed over the firing sources in the single-process order. SpiNNaker's
    whole-board synop energy is switched off so that its routing energy (each spike
    along its core's tree) is charged and compared."""
    import dataclasses

    from nmcompiler.backends.emulator.engine import Engine

    if board == "halapoint":
        cn, inputs = halapoint
    else:
        cn, inputs = compiled(board, 4)
        cost = dataclasses.replace(cn.target.cost, synop_energy_all_in=False)
        cn = dataclasses.replace(cn, target=dataclasses.replace(cn.target, cost=cost))
    monkeypatch.setattr(Engine, "COUNTER_BYTES", 8)
    ref = EmulatorBackend().run(cn, inputs, STEPS)
    assert ref.info["link_hops_per_step"] is False
    assert ref.counters.energy_j["routing"] > 0
    assert ref.counters.link_hops.shape[0] == 1 and ref.counters.link_hops.sum() > 0
    assert ref.info["populations"]
    for workers in (2, 3):
        assert_same(ref, run_distributed(cn, inputs, STEPS, workers=workers,
                                         in_process=True))


def test_batched_input_with_chips_over_parts(generic):
    """A (T, B, n) input with the chips spread (the batch split runs over TCP below)."""
    cn, inputs = generic
    x = inputs["in"]
    xb = {"in": np.stack([x, x[::-1], np.roll(x, 5, axis=0)], axis=1)}
    ref = EmulatorBackend().run(cn, xb, STEPS)
    assert_same(ref, run_distributed(cn, xb, STEPS, workers=2, in_process=True))


def test_the_link_hop_choice_is_the_single_process_one(halapoint, generic):
    """The counter matrix's size, rebuilt from the parts, is the engine's: so the parts
    keep per-step link hops exactly where the single-process run does."""
    for cn, _ in (halapoint, generic):
        eng = engine_for(cn.network, cn.target, partition=cn.partition,
                         placement=cn.placement)
        est = eng.noc_hops_total  # hops of every inter-core message, from the build
        n_links = eng.costs.n_links
        want = not est > max(eng.count_mat.nnz, 100_000)
        from nmcompiler.backends.emulator import neuron_cores

        nc, n_cores = neuron_cores(cn.network, cn.partition)
        sums = [PartRunner(cn.network, family=eng.family, formats=cn.target.formats,
                           neuron_core=nc, n_cores=n_cores, own_cores=m, target=cn.target,
                           physical=np.asarray(cn.placement.core)).summary()
                for m in chip_groups(cn, 3)]
        assert _keep_link(STEPS, n_links, sums, eng.N) == want


def test_zero_delay_across_workers_is_refused(emulator20):
    cn, inputs = compiled(emulator20, 1, zero_delay=True)
    with pytest.raises(BackendError, match="zero-delay") as exc:
        run_distributed(cn, inputs, STEPS, workers=4, in_process=True)
    assert "fewer workers" in exc.value.hint
    # on one worker the same network runs, equal to the single process
    assert_same(EmulatorBackend().run(cn, inputs, STEPS),
                run_distributed(cn, inputs, STEPS, workers=1, in_process=True))


def test_bad_options_are_configuration_errors(halapoint):
    cn, inputs = halapoint
    with pytest.raises(ConfigError, match="split"):
        run_distributed(cn, inputs, STEPS, split="rows", in_process=True)
    with pytest.raises(ConfigError, match="workers"):
        run_distributed(cn, inputs, STEPS, workers=0, in_process=True)
    with pytest.raises(ConfigError, match="cannot reach"):
        run_distributed(cn, inputs, STEPS, scheduler="tcp://127.0.0.1:1",
                        connect_timeout_s=0.5)


@pytest.fixture(scope="module")
def tcp_cluster():
    """Two worker processes behind a scheduler on TCP (the multi-machine path)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", protocol="tcp",
                                       dashboard_address=None, silence_logs=logging.ERROR)
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


def test_dask_actors_over_tcp_equal_one_process(halapoint, generic, tcp_cluster):
    cn, inputs = halapoint
    ref = EmulatorBackend().run(cn, inputs, STEPS)
    got = EmulatorBackend().run(cn, inputs, STEPS, scheduler=tcp_cluster.scheduler_address,
                                workers=3)
    assert_same(ref, got)
    assert got.info["distributed"]["parts"] == 3
    cn, inputs = generic
    x = inputs["in"]
    xb = {"in": np.stack([x, x[::-1], np.roll(x, 5, axis=0)], axis=1)}
    ref = EmulatorBackend().run(cn, xb, STEPS)
    got = EmulatorBackend().run(cn, xb, STEPS, scheduler=tcp_cluster.scheduler_address,
                                split="batch")
    assert_same(ref, got)
    assert got.info["distributed"]["parts"] == 2  # the cluster's workers


def test_nmc_run_on_workers_writes_the_single_process_outputs(halapoint, tcp_cluster,
                                                              tmp_path):
    from nmcompiler.compiled import save_compiled

    cn, inputs = halapoint
    save_compiled(cn, tmp_path / "build")
    np.savez(tmp_path / "x.npz", **inputs)
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    common = [sys.executable, "-m", "nmcompiler.cli", "run", "build", "-i", "x.npz", "--json"]
    one = subprocess.run(common + ["-o", "one"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    spread = subprocess.run(common + ["-o", "spread", "--workers", "2", "--scheduler",
                                      tcp_cluster.scheduler_address],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert one.returncode == 0 and spread.returncode == 0, spread.stderr
    a, b = np.load(tmp_path / "one" / "outputs.npz"), np.load(tmp_path / "spread" / "outputs.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)
    ra = json.loads((tmp_path / "one" / "run_report.json").read_text())
    rb = json.loads((tmp_path / "spread" / "run_report.json").read_text())
    assert "synaptic_ops" in ra and "energy_j" in ra
    assert rb == ra  # every figure of the report


@settings(max_examples=8, deadline=None)
@given(st.one_of(st.integers(max_value=0), st.integers(min_value=4097, max_value=10**9)))
def test_cli_rejects_bad_worker_counts(tmp_path_factory, workers):
    from typer.testing import CliRunner

    from nmcompiler.cli import app

    d = tmp_path_factory.mktemp("w")
    res = CliRunner().invoke(app, ["run", str(d), "--workers", str(workers)])
    assert isinstance(res.exception, UsageError), res.output
    assert res.exception.exit_code == 2 and "workers" in str(res.exception)
