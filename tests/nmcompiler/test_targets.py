"""Target descriptions: every bundled file loads, is cited, and the schema rejects errors."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import hw_configs
from nmcompiler.ir.errors import ConfigError, UsageError
from nmcompiler.targets import (
    COORD_NAMES,
    SCHEMA,
    STATUSES,
    Target,
    list_targets,
    load_target,
    parse_target,
    target_names,
)

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

BUNDLED = ("emulator", "loihi", "loihi2", "speck2f", "spinnaker", "spinnaker2")
ALL_IDS = BUNDLED + ("spinnaker:spinn3", "spinnaker:spinn5", "spinnaker2:board48",
                     "spinnaker:spinn5x12", "loihi2:halapoint")


def _doc(name: str = "loihi") -> dict:
    return tomllib.loads(hw_configs.path(name).read_text(encoding="utf-8"))


def _raises(doc: dict, *fragments: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_target(doc, label="test.toml")
    err = info.value
    text = str(err)
    assert "test.toml" in text
    for frag in fragments:
        assert frag in text, f"{frag!r} not in {text!r}"
    assert err.hint, "every ConfigError carries a hint"
    assert err.exit_code == 2
    return err


# ------------------------------------------------------------------ bundled files


def test_bundled_names():
    assert tuple(target_names()) == BUNDLED
    assert tuple(hw_configs.names()) == BUNDLED
    assert hw_configs.path("loihi").name == "loihi.toml"
    with pytest.raises(FileNotFoundError):
        hw_configs.path("nope")


@pytest.mark.parametrize("name", ALL_IDS)
def test_every_bundled_target_loads(name):
    t = load_target(name)
    assert isinstance(t, Target)
    assert t.name == name
    assert t.total_cores == t.topology.chips_per_system * t.topology.cores_per_chip
    assert t.description and t.backend
    coords = t.core_coords()
    assert coords.shape == (t.total_cores, len(COORD_NAMES))
    assert len({tuple(c) for c in coords}) == t.total_cores  # distinct cores


def test_list_targets():
    assert [t.name for t in list_targets()] == list(BUNDLED)


@pytest.mark.parametrize("name", ALL_IDS)
def test_every_number_has_a_source(name):
    t = load_target(name)
    given = {p.key for p in t.sources}
    for section, specs in SCHEMA.items():
        obj = getattr(t, {"core_budget": "core", "chip_budget": "chip"}.get(section, section))
        for fname in specs:
            if (section, fname) == ("topology", "kind"):
                continue
            value = None if obj is None else getattr(obj, fname)
            if section == "topology" and fname in ("chips", "wrap"):
                continue  # filled in from chip_grid when omitted
            if value is not None:
                assert f"{section}.{fname}" in given, f"{name}: {section}.{fname} uncited"
    for p in t.sources:
        assert p.status in STATUSES
        if p.status in ("cited", "derived"):
            assert p.source and p.source.strip()
            assert "hw_reference.md" in p.source, f"{name}: {p.key} does not cite hw_reference"
        if p.status == "unknown":
            assert p.note and p.note.strip()
        if p.status == "synthetic":
            assert not t.real_chip


def _numbers_in(table, path=""):
    """Yield (path, parent-table) for every number/bool leaf in a raw TOML document."""
    for key, value in table.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            if "value" in value:
                yield here, value
            else:
                yield from _numbers_in(value, here)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if key == "schema_version":
                continue
            yield here, None


@pytest.mark.parametrize("name", BUNDLED)
def test_raw_files_have_no_bare_numbers(name):
    doc = _doc(name)
    for where, quantity in _numbers_in(doc):
        assert quantity is not None, f"{name}: bare number at {where}"
        assert quantity.get("source") or (
            quantity.get("status") == "unknown" and quantity.get("note")
        ), f"{name}: {where} has neither source nor unknown+note"


def test_emulator_is_labelled_synthetic():
    t = load_target("emulator")
    assert t.real_chip is False
    assert "NOT a real chip" in t.description
    assert {p.status for p in t.sources} == {"synthetic"}
    assert t.unknown_fields() == ()


def test_real_chips_are_real():
    for t in list_targets():
        if t.name != "emulator":
            assert t.real_chip
            assert all(p.status != "synthetic" for p in t.sources)


# ------------------------------------------------------------------ headline numbers
# (the values of docs/hw_reference.md)


def test_loihi_budgets():
    t = load_target("loihi")
    assert t.topology.cores_per_chip == 128  # §1a
    assert t.core.neurons == 1024  # §1b
    assert t.core.input_axons == 4096 and t.core.output_axons == 4096  # §1b
    assert t.core.synaptic_memory_bits == 16384 * 64  # §1b
    assert (t.formats.voltage_bits, t.formats.decay_bits, t.formats.threshold_bits) == (24, 12, 17)
    assert t.cost.energy_per_synop_j == pytest.approx(23.6e-12)  # §1e
    assert t.cost.energy_per_hop_x_j == pytest.approx(3.0e-12)
    assert t.cost.energy_per_hop_y_j == pytest.approx(4.0e-12)
    assert t.cost.barrier_time_s == pytest.approx(465e-9)
    assert "core_budget.neurons" not in t.unknown_fields()
    assert "topology.node_grid" in t.unknown_fields()  # mesh shape not public (§8.2)


def test_loihi2_budgets_and_unknowns():
    t = load_target("loihi2")
    assert t.topology.cores_per_chip == 120  # Lava mapper, §2
    assert t.core.neurons == 8192
    assert t.core.local_memory_bytes == 192 * 1024
    assert t.capabilities.graded_spikes and t.capabilities.graded_spike_bits == 24
    assert t.capabilities.resonate_and_fire
    unknown = set(t.unknown_fields())
    for key in (
        "core_budget.input_axons",
        "core_budget.output_axons",
        "cost.energy_per_synop_j",
        "cost.static_power_w",
    ):
        assert key in unknown
    assert "topology.cores_per_chip" not in unknown
    prov = t.source_of("cost.energy_per_synop_j")
    assert prov.status == "unknown" and "Loihi 1" in prov.note
    with pytest.raises(KeyError):
        t.source_of("core_budget.max_destinations")  # not given for Loihi 2


def test_spinnaker_budgets():
    t = load_target("spinnaker")
    assert t.chip.routing_entries == 1023  # §3a
    assert t.chip.links_per_chip == 6
    assert t.core.neurons == 256  # §3b
    assert t.core.max_delay == 64
    assert t.core.row_header_words == 3
    assert t.topology.chips_per_system == 48 and t.topology.cores_per_chip == 16
    assert t.total_cores == 48 * 16
    assert t.cost.energy_per_synop_j == pytest.approx(43e-9)  # [Sharp12]
    assert t.cost.static_power_w == pytest.approx(0.35)
    assert t.core.input_axons is None and t.core.output_axons is None
    s3 = load_target("spinnaker", variant="spinn3")
    assert s3.name == "spinnaker:spinn3" and s3.variant == "spinn3"
    assert s3.topology.chips_per_system == 4 and s3.topology.wrap == (True, True)
    assert s3.chip.routing_entries == 1023
    assert load_target("spinnaker:spinn5").total_cores == t.total_cores


def test_multi_chip_variants_for_large_networks():
    # loihi2:halapoint: Hala Point's 1,152 chips (hw_reference.md §2), Loihi 2 per-chip
    # and per-core budgets unchanged; the chip arrangement is a labelled default
    base = load_target("loihi2")
    hp = load_target("loihi2:halapoint")
    assert hp.n_chips == 1152 and hp.topology.chip_grid == (48, 24)
    assert hp.total_cores == 1152 * 120
    assert hp.core == base.core and hp.formats == base.formats
    assert hp.source_of("topology.chips_per_system").status == "cited"
    assert "HalaPoint" in hp.source_of("topology.chips_per_system").source
    assert "topology.chip_grid" in hp.unknown_fields()
    assert hp.total_cores * hp.core.neurons >= 10**9  # Hala Point: 1.15 B neurons
    # corner to the last core (tile (5, 3) of chip (47, 23): its 120 cores fill 30 of
    # the 32 tiles): (47 * 8 + 5) + (23 * 4 + 3) router hops
    assert int(hp.hops(0, hp.total_cores - 1)) == 381 + 95
    # spinnaker:spinn5x12: 12 SpiNN-5 boards, 24 x 24 chips, a torus (multiple of 12 x 12)
    sp = load_target("spinnaker:spinn5x12")
    assert sp.n_chips == 576 == 12 * 48 and sp.topology.wrap == (True, True)
    assert sp.total_cores == 576 * 16
    assert sp.core == load_target("spinnaker").core
    assert sp.chip.routing_entries == 1023
    assert sp.source_of("topology.wrap").status == "cited"
    assert int(sp.hops(0, 16 * 23)) == 1  # (0, 0) -> (23, 0) wraps around
    # a million neurons of 256 per core fit
    assert sp.total_cores * sp.core.neurons >= 10**6
    assert "spinn5x12" in load_target("spinnaker").variants


def test_spinnaker2_budgets():
    t = load_target("spinnaker2")
    assert t.chip.routing_entries == 16384  # §4
    assert t.core.local_memory_bytes == 128 * 1024
    assert "core_budget.neurons" in t.unknown_fields()
    assert load_target("spinnaker2:board48").n_chips == 48


def test_speck_budgets():
    t = load_target("speck2f")
    assert t.topology.cores_per_chip == 9  # §5a
    assert t.core.max_destinations == 2
    assert sum(t.core.neurons) == 327_680  # derived total, §5a
    assert sum(t.core.synaptic_memory_words) == 278_528
    assert t.core.neurons[0] == 64 * 1024 and t.core.synaptic_memory_words[5] == 64 * 1024
    assert t.core.bias_memory_words == 1024
    assert t.formats.weight_bits == 8 and t.formats.voltage_bits == 16
    assert t.capabilities.convolution_hardware and not t.capabilities.time_stepped
    assert t.convolution is not None and t.convolution.max_kernel_size == 16
    assert t.convolution.strides == (1, 2, 4, 8)
    assert t.cost.static_power_w == pytest.approx(0.42e-3)
    assert "cost.energy_per_synop_j" in t.unknown_fields()
    assert list(t.per_core("neurons")) == list(t.core.neurons)


def test_per_core_arrays():
    t = load_target("spinnaker:spinn3")
    n = t.per_core("neurons")
    assert n.shape == (t.total_cores,) and set(n.tolist()) == {256}
    assert set(t.per_core("input_axons").tolist()) == {-1}
    with pytest.raises(UsageError, match="did you mean 'neurons'"):
        t.per_core("nerons")


def test_target_is_frozen():
    t = load_target("loihi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.core.neurons = 1
    with pytest.raises(TypeError):
        Target("positional")  # keyword-only
    assert hash(t) == hash(load_target("loihi")) and t == load_target("loihi")


# ------------------------------------------------------------------ geometry


def test_mesh_hops_loihi():
    t = load_target("loihi")  # 8 x 4 tiles of 4 cores
    assert t.hops(0, 3) == 0  # same tile
    assert t.hops(0, 4) == 1  # next tile in x
    assert t.hops(0, 4 * 8) == 1  # next tile in y
    assert t.hops(0, 127) == 7 + 3
    a = np.array([0, 4, 127])
    assert t.hops(a, a[::-1]).tolist() == [10, 0, 10]
    assert t.hops(a, 4).tolist() == [1, 0, 9]
    m = t.hops(np.arange(128)[:, None], np.arange(128)[None, :])
    assert m.shape == (128, 128) and (m == m.T).all() and (np.diag(m) == 0).all()


def test_mesh_hops_across_chips_emulator():
    t = load_target("emulator")  # 2 x 2 chips of 4 x 4 tiles; global x = chip_x*4 + node_x
    per_chip = t.topology.cores_per_chip
    assert tuple(t.core_coords()[per_chip]) == (1, 0, 0, 0, 0)
    assert t.hops(0, per_chip) == 4  # chip (1, 0), tile (0, 0)
    assert t.hops(0, 3 * per_chip + per_chip - 1) == 7 + 7


def test_mesh_wrap():
    doc = _doc("emulator")
    doc["topology"]["wrap"] = {"value": [True, False], "status": "synthetic", "source": "test"}
    t = parse_target(doc, label="wrap.toml")
    per_chip = t.topology.cores_per_chip
    # tile (3, 0) of chip (1, 0) is global x = 7; wraps to x = 0 in one hop
    core = per_chip + 3 * t.topology.cores_per_node
    assert tuple(t.core_coords()[core][[0, 2]]) == (1, 3)
    assert t.hops(0, core) == 1
    # y does not wrap: tile (0, 3) of chip (0, 1) is global y = 7
    core_y = 2 * per_chip + 12 * t.topology.cores_per_node
    assert t.hops(0, core_y) == 7


def _tri_doc(grid, wrap):
    doc = _doc("spinnaker")
    topo = doc["topology"]
    del topo["chips"]
    n = grid[0] * grid[1]
    topo["chip_grid"] = {"value": list(grid), "source": "hw_reference.md test"}
    topo["chips_per_system"] = {"value": n, "source": "hw_reference.md test"}
    topo["wrap"] = {"value": list(wrap), "source": "hw_reference.md test"}
    return parse_target(doc, label="tri.toml")


def _core_on_chip(t, x, y):
    chips = t.topology.chips
    return chips.index((x, y)) * t.topology.cores_per_chip


def test_spinnaker_diagonal_hops():
    t = load_target("spinnaker")  # SpiNN-5, no wrap
    c = lambda x, y: _core_on_chip(t, x, y)  # noqa: E731
    assert t.hops(c(0, 0), c(0, 0) + 5) == 0  # same chip
    assert t.hops(c(0, 0), c(1, 1)) == 1  # diagonal link
    assert t.hops(c(0, 0), c(3, 3)) == 3
    assert t.hops(c(0, 0), c(2, 1)) == 2  # max(|dx|, |dy|)
    assert t.hops(c(1, 0), c(0, 1)) == 2  # opposite signs: |dx| + |dy|
    assert t.hops(c(2, 0), c(0, 2)) == 4
    assert t.hops(c(0, 0), c(7, 7)) == 7


def test_triangular_torus_wrap():
    t = _tri_doc((4, 4), (True, True))
    c = lambda x, y: _core_on_chip(t, x, y)  # noqa: E731
    assert t.hops(c(0, 0), c(3, 0)) == 1  # wrap in x
    assert t.hops(c(0, 0), c(3, 3)) == 1  # wrap both: (-1, -1) is the diagonal link
    assert t.hops(c(0, 0), c(1, 3)) == 2  # (1, -1): opposite signs
    assert t.hops(c(0, 0), c(2, 2)) == 2
    assert t.hops(c(0, 0), c(3, 1)) == 2  # (-1, 1)
    s3 = load_target("spinnaker:spinn3")
    every = np.arange(s3.total_cores)
    m = s3.hops(every[:, None], every[None, :])
    assert m.max() == 1  # 2 x 2 wrapped: every chip is a neighbour


def test_speck_hops_and_links():
    t = load_target("speck2f")
    assert t.hops(0, 0) == 0 and t.hops(0, 8) == 1
    assert len(t.links()) == 9 * 8


def _bfs(n, links, start):
    adj = [[] for _ in range(n)]
    for a, b in links:
        adj[a].append(b)
    dist = [math.inf] * n
    dist[start] = 0
    queue = deque([start])
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if dist[v] == math.inf:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


@pytest.mark.parametrize("name", ALL_IDS)
def test_hops_match_shortest_paths_on_links(name):
    t = load_target(name)
    links = t.links()
    assert links.ndim == 2 and links.shape[1] == 2
    # every link is one hop, listed in both directions, no self loops
    pairs = {tuple(p) for p in links.tolist()}
    assert all((b, a) in pairs for a, b in pairs)
    assert all(a != b for a, b in pairs)
    # one core per node that has usable cores
    nodes = t.core_node(np.arange(t.total_cores))
    first = {}
    for core, node in enumerate(nodes.tolist()):
        first.setdefault(node, core)
    reps = sorted(first.items())
    for node, core in reps[:: max(1, len(reps) // 12)]:
        dist = _bfs(t.n_nodes, links.tolist(), node)
        others = np.array([c for _, c in reps])
        got = t.hops(core, others)
        want = [dist[n] for n, _ in reps]
        assert got.tolist() == want, f"{name}: hops from node {node} disagree with BFS"


def test_wrap_with_holes_rejected():
    doc = _doc("spinnaker")
    doc["topology"]["wrap"] = {"value": [True, True], "source": "hw_reference.md x"}
    _raises(doc, "topology.wrap", "holes")


def test_hops_rejects_bad_cores():
    t = load_target("loihi")
    with pytest.raises(UsageError, match="out of range"):
        t.hops(0, 128)
    with pytest.raises(UsageError):
        t.hops(-1, 0)


# ------------------------------------------------------------------ schema errors


def test_missing_key():
    doc = _doc()
    del doc["core_budget"]["neurons"]
    err = _raises(doc, "missing key 'core_budget.neurons'", "source =")
    assert err.rule == "core_budget.neurons"


def test_missing_section_and_top_key():
    doc = _doc()
    del doc["cost"]
    _raises(doc, "missing section [cost]")
    doc = _doc()
    del doc["backend"]
    _raises(doc, "missing key 'backend'")


def test_wrong_type():
    doc = _doc()
    doc["core_budget"]["neurons"]["value"] = "many"
    _raises(doc, "'core_budget.neurons'", "must be an integer", "docs/targets.md")
    doc = _doc()
    doc["core_budget"]["neurons"]["value"] = 1024.0
    _raises(doc, "'core_budget.neurons'", "must be an integer")
    doc = _doc()
    doc["capabilities"]["stochastic"]["value"] = 1
    _raises(doc, "'capabilities.stochastic'", "true or false")
    doc = _doc()
    doc["core_budget"] = 5
    _raises(doc, "'core_budget'", "must be a table")


def test_negative_value():
    doc = _doc()
    doc["core_budget"]["neurons"]["value"] = -5
    err = _raises(doc, "'core_budget.neurons'", "must be >= 1, got -5", "negative")
    assert err.need == -5
    doc = _doc()
    doc["cost"]["energy_per_synop_j"]["value"] = -1e-12
    _raises(doc, "'cost.energy_per_synop_j'", ">= 0")


def test_inconsistent_delays():
    doc = _doc()
    doc["core_budget"]["min_delay"]["value"] = 10
    doc["core_budget"]["max_delay"]["value"] = 2
    err = _raises(
        doc,
        "'core_budget.min_delay'",
        "(10)",
        "'core_budget.max_delay' (2)",
        "min_delay must be <= max_delay",
    )
    assert (err.need, err.limit) == (10, 2)


def test_unknown_key_did_you_mean():
    doc = _doc()
    doc["core_budget"]["nerons"] = doc["core_budget"].pop("neurons")
    _raises(doc, "unknown key 'core_budget.nerons'", "did you mean 'neurons'?")
    doc = _doc()
    doc["cost"]["energy_per_synop_j"]["sorce"] = "x"
    _raises(doc, "unknown key 'cost.energy_per_synop_j.sorce'", "did you mean 'source'?")
    doc = _doc()
    doc["topologie"] = doc.pop("topology")
    _raises(doc, "unknown key 'topologie'", "did you mean 'topology'?")


def test_unknown_topology_kind():
    doc = _doc()
    doc["topology"]["kind"] = "mesh2"
    _raises(
        doc,
        "'topology.kind'",
        "unknown value 'mesh2'",
        "did you mean 'mesh2d'?",
        "triangular_torus",
    )
    doc["topology"]["kind"] = "hypercube"
    _raises(doc, "'topology.kind'", "unknown value 'hypercube'", "mesh2d")


def test_number_without_source():
    doc = _doc()
    doc["core_budget"]["neurons"] = 1024
    _raises(doc, "'core_budget.neurons'", "a number without a source", 'status = "unknown"')
    doc = _doc()
    del doc["core_budget"]["neurons"]["source"]
    _raises(doc, "'core_budget.neurons'", "without a source")
    doc = _doc()
    doc["core_budget"]["neurons"]["source"] = "  "
    _raises(doc, "'core_budget.neurons.source'", "non-empty string")


def test_unknown_needs_note_and_synthetic_needs_model_chip():
    doc = _doc()
    doc["core_budget"]["neurons"] = {"value": 1024, "status": "unknown"}
    _raises(doc, "'core_budget.neurons'", "no note", "conservative default")
    doc = _doc()
    doc["core_budget"]["neurons"] = {"value": 1024, "status": "guess", "source": "x"}
    _raises(doc, "'core_budget.neurons.status'", "unknown value 'guess'")
    doc = _doc()
    doc["core_budget"]["neurons"] = {"value": 1024, "status": "synthetic", "source": "x"}
    _raises(doc, "'core_budget.neurons'", "real_chip = true")


def test_other_consistency_checks():
    doc = _doc("spinnaker")
    doc["topology"]["chips_per_system"]["value"] = 47
    _raises(doc, "'topology.chips_per_system'", "48 chips")
    doc = _doc()
    doc["topology"]["cores_per_chip"]["value"] = 200
    _raises(doc, "'topology.cores_per_chip'", "128 core slots")
    doc = _doc()
    doc["capabilities"]["graded_spike_bits"]["value"] = 8
    _raises(doc, "'capabilities.graded_spike_bits'", "graded_spikes is false")
    doc = _doc("speck2f")
    doc["core_budget"]["neurons"]["value"] = [1, 2, 3]
    _raises(doc, "'core_budget.neurons'", "3 per-core values", "cores_per_chip is 9")
    doc = _doc("speck2f")
    del doc["convolution"]
    _raises(doc, "missing section [convolution]")
    doc = _doc()
    doc["schema_version"] = 99
    _raises(doc, "'schema_version'", "unsupported")


def test_errors_do_not_mutate_input():
    doc = _doc("spinnaker")
    before = copy.deepcopy(doc)
    parse_target(doc, label="x.toml", variant="spinn3")
    assert doc == before


# ------------------------------------------------------------------ user files, names


def test_user_file_by_path(tmp_path: Path):
    text = hw_configs.path("loihi").read_text(encoding="utf-8")
    text = text.replace('name = "loihi"', 'name = "my_chip"', 1)
    text = text.replace("value = 1024,", "value = 512,", 1)
    f = tmp_path / "my_chip.toml"
    f.write_text(text, encoding="utf-8")
    for ref in (f, str(f)):
        t = load_target(ref)
        assert t.name == "my_chip" and t.core.neurons == 512
        assert t.path == str(f)


def test_user_file_errors_name_the_file(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text("name = [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml.*not valid TOML") as info:
        load_target(f)
    assert info.value.hint
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_target(tmp_path / "absent.toml")
    assert info.value.hint


def test_unknown_name_and_variant():
    with pytest.raises(ConfigError, match="unknown target 'loihi3'") as info:
        load_target("loihi3")
    assert "did you mean 'loihi" in info.value.hint
    assert "path" in info.value.hint
    with pytest.raises(ConfigError, match="unknown variant 'spin3'") as info:
        load_target("spinnaker:spin3")
    assert "did you mean 'spinn3'?" in info.value.hint
    with pytest.raises(ConfigError, match="variant"):
        load_target("spinnaker:spinn3", variant="spinn5")


@pytest.mark.parametrize("key, value, fragment", [
    ("weight_exponent_offset", 2**31, "must be <= 64"),
    ("weight_exponent_offset", -(2**31), "must be >= -64"),
    ("weight_exponent_max", 1000, "must be <= 64"),
])
def test_weight_exponents_are_bounded(key, value, fragment):
    """A chip file with ``weight_exponent_offset = 2**31`` overflowed the quantiser (found
    by the long fuzz run); exponents are shifts in bits, bounded like other widths."""
    doc = _doc("loihi2")
    doc["formats"][key]["value"] = value
    _raises(doc, f"formats.{key}", fragment)
