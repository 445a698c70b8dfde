"""Target files: the TOML schema, loading and checking.

A *target* is one file in ``hw_configs/`` (or a user's own file): the topology of cores,
chips and links, the per-core and per-chip budgets a partition must respect, the number
formats the quantizer must produce, the capability flags and a cost model. The format is
documented in ``docs/targets.md``, with the source of every number.

Every hardware number in a file is a small table that carries its provenance::

    neurons = { value = 1024, source = "Davies18 p.89" }
    fan_in  = { value = 4096, status = "unknown", note = "conservative default: ..." }

``load_target`` checks the file against the schema below and raises
:class:`nmcompiler.ir.errors.ConfigError` naming the file, the key, the problem and a hint.
The result is a frozen :class:`~nmcompiler.targets.model.Target`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nmcompiler.ir.errors import ConfigError

from .fields import (
    OPTIONAL_SECTIONS,
    PLAIN_FIELDS,
    QUANTITY_KEYS,
    SCHEMA,
    SCHEMA_VERSION,
    STATUSES,
    SYNAPSE_ACCOUNTINGS,
    TOP_KEYS,
    TYPE_WORDS,
    VARIANT_EXTRA_KEYS,
    FieldSpec,
)
from .model import (
    Capabilities,
    ChipBudget,
    ConvolutionLimits,
    CoreBudget,
    CostModel,
    NumberFormat,
    Provenance,
    Target,
    Topology,
    did_you_mean,
)

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "SCHEMA_VERSION",
    "SCHEMA",
    "STATUSES",
    "SYNAPSE_ACCOUNTINGS",
    "load_target",
    "parse_target",
    "list_targets",
    "target_names",
]

# --------------------------------------------------------------------------- loading


def target_names() -> list[str]:
    """Names of the bundled targets (``hw_configs/*.toml``)."""
    from nmcompiler import hw_configs

    return hw_configs.names()


def list_targets() -> list[Target]:
    """Every bundled target (default variants), loaded and checked."""
    return [load_target(name) for name in target_names()]


def load_target(name_or_path: str | Path, *, variant: str | None = None) -> Target:
    """Load a bundled target by name or a user's TOML file by path, and check it.

    ``name_or_path``: ``"loihi2"``, ``"spinnaker:spinn3"`` (name and variant), or a path
    to a ``.toml`` file (a ``Path``, or a string ending in ``.toml`` or containing a path
    separator). ``variant`` selects a ``[variants.<name>]`` block (board variant).
    Raises :class:`nmcompiler.ir.errors.ConfigError` for a missing, unreadable or invalid file.
    """
    path, variant = _resolve(name_or_path, variant)
    label = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{label}: cannot read target file ({exc.strerror or exc})",
            obj=label,
            rule="file",
            hint="check the path, or use a bundled name: " + ", ".join(target_names()),
        ) from exc
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{label}: not valid TOML ({exc})",
            obj=label,
            rule="toml",
            hint="fix the syntax; see docs/targets.md for the format",
        ) from exc
    return parse_target(doc, label=label, variant=variant)


def _resolve(name_or_path: str | Path, variant: str | None) -> tuple[Path, str | None]:
    if isinstance(name_or_path, Path):
        return name_or_path, variant
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        return Path(text), variant
    name, sep, var = text.partition(":")
    if sep:
        if variant is not None and variant != var:
            raise ConfigError(
                f"target {text!r} names variant {var!r} but variant={variant!r} was given",
                obj=text,
                rule="variant",
                hint="give the variant once",
            )
        variant = var
    names = target_names()
    if name not in names:
        raise ConfigError(
            f"unknown target {name!r}",
            obj=name,
            rule="target",
            hint=_did_you_mean(name, names, what="bundled targets")
            + "; or pass the path of your own .toml file",
        )
    from nmcompiler import hw_configs

    return hw_configs.path(name), variant


def _check_variants(label: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[variants.<name>]`` tables of ``doc``, each checked for known sections."""
    variants_raw = doc.get("variants", {})
    if not isinstance(variants_raw, dict) or not all(
        isinstance(v, dict) for v in variants_raw.values()
    ):
        raise _err(
            label,
            "variants",
            "must be a table of tables [variants.<name>]",
            "write each variant as [variants.<name>] with the sections it overrides",
        )
    for vname, vdoc in variants_raw.items():
        _check_keys(label, f"variants.{vname}", vdoc, tuple(SCHEMA) + VARIANT_EXTRA_KEYS)
        for section, table in vdoc.items():
            if section in SCHEMA and not isinstance(table, dict):
                raise _err(
                    label,
                    f"variants.{vname}.{section}",
                    "must be a table",
                    f"write it as [variants.{vname}.{section}]",
                )
    return variants_raw


def _check_header(label: str, doc: Mapping[str, Any]) -> None:
    """The top-level keys are present, the schema version is this one, real_chip a bool."""
    for key in ("schema_version", "name", "description", "backend", "real_chip"):
        if key not in doc:
            raise _missing(label, key)
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise _err(
            label,
            "schema_version",
            f"must be an integer, got {_show(version)}",
            f"write schema_version = {SCHEMA_VERSION}",
        )
    if version != SCHEMA_VERSION:
        raise _err(
            label,
            "schema_version",
            f"unsupported schema version {version} (this nmcompiler reads {SCHEMA_VERSION})",
            f"write schema_version = {SCHEMA_VERSION}",
        )
    real_chip = doc["real_chip"]
    if not isinstance(real_chip, bool):
        raise _err(
            label,
            "real_chip",
            f"must be true or false, got {_show(real_chip)}",
            "write real_chip = true for a chip that exists, false for a model",
        )


def _parse_sections(
    label: str, doc: Mapping[str, Any], real_chip: bool
) -> tuple[dict[str, dict[str, Any]], list[Provenance]]:
    """The checked values of every schema section, and the provenance of each quantity."""
    values: dict[str, dict[str, Any]] = {}
    sources: list[Provenance] = []
    for section, specs in SCHEMA.items():
        if section not in doc:
            if section in OPTIONAL_SECTIONS:
                values[section] = {}
                continue
            raise _missing(label, section, section=True)
        table = doc[section]
        if not isinstance(table, dict):
            raise _err(
                label, section, f"must be a table, got {_show(table)}", f"write it as [{section}]"
            )
        _check_keys(label, section, table, tuple(specs))
        sec_values: dict[str, Any] = {}
        for fname, spec in specs.items():
            key = f"{section}.{fname}"
            if fname not in table:
                if spec.required:
                    raise _missing(label, key)
                sec_values[fname] = None
                continue
            if (section, fname) in PLAIN_FIELDS:
                sec_values[fname] = _check_value(label, key, spec, table[fname])
                continue
            value, prov = _parse_quantity(label, key, spec, table[fname], real_chip)
            sec_values[fname] = value
            sources.append(prov)
        values[section] = sec_values
    return values, sources


def parse_target(doc: Mapping[str, Any], *, label: str, variant: str | None = None) -> Target:
    """Check a parsed TOML document and build the :class:`Target` (``label`` names it)."""
    doc = dict(doc)
    variants_raw = _check_variants(label, doc)
    variant_names = tuple(sorted(variants_raw))
    base_name = _plain_str(label, doc, "name")
    if variant is not None:
        if variant not in variants_raw:
            raise ConfigError(
                f"{label}: unknown variant {variant!r} of target {base_name!r}",
                obj=label,
                rule="variant",
                hint=_did_you_mean(variant, variant_names, what="variants"),
            )
        doc = _merge(doc, variants_raw[variant])

    _check_keys(label, "", doc, TOP_KEYS + tuple(SCHEMA))
    _check_header(label, doc)
    description = _plain_str(label, doc, "description")
    backend = _plain_str(label, doc, "backend")
    real_chip = doc["real_chip"]
    values, sources = _parse_sections(label, doc, real_chip)

    topo = _build_topology(label, values["topology"])
    core = CoreBudget(**values["core_budget"])
    chip = ChipBudget(**values["chip_budget"])
    formats = NumberFormat(**values["formats"])
    caps = Capabilities(**values["capabilities"])
    cost = CostModel(**values["cost"])
    conv = ConvolutionLimits(**values["convolution"]) if values["convolution"] else None
    _check_consistency(label, topo, core, formats, caps, conv)

    return Target(
        name=base_name if variant is None else f"{base_name}:{variant}",
        base_name=base_name,
        variant=variant,
        variants=variant_names,
        description=description,
        backend=backend,
        real_chip=real_chip,
        path=label,
        topology=topo,
        core=core,
        chip=chip,
        formats=formats,
        capabilities=caps,
        cost=cost,
        convolution=conv,
        sources=tuple(sources),
    )


# --------------------------------------------------------------------------- checks


def _merge(base: dict, override: Mapping[str, Any]) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in SCHEMA:
            merged = dict(out[key])
            merged.update(value)
            out[key] = merged
        else:
            out[key] = value
    return out


def _err(label: str, key: str, problem: str, hint: str, **kw: Any) -> ConfigError:
    where = f"key '{key}'" if key else "top level"
    return ConfigError(f"{label}: {where} {problem}", obj=label, rule=key or None, hint=hint, **kw)


def _missing(label: str, key: str, *, section: bool = False) -> ConfigError:
    if section:
        return ConfigError(
            f"{label}: missing section [{key}]",
            obj=label,
            rule=key,
            hint=f"add a [{key}] table with the keys listed in docs/targets.md",
        )
    section_name, _, fname = key.rpartition(".")
    if section_name:
        hint = (
            f'add {fname} = {{ value = ..., source = "hw_reference.md §..." }} to '
            f'[{section_name}], or mark it status = "unknown" with a note'
        )
    else:
        hint = f"add {key} = ... at the top of the file (see docs/targets.md)"
    return ConfigError(f"{label}: missing key '{key}'", obj=label, rule=key, hint=hint)


_did_you_mean = did_you_mean


def _check_keys(label: str, prefix: str, table: Mapping[str, Any], allowed: tuple) -> None:
    for key in table:
        if key not in allowed:
            full = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                f"{label}: unknown key '{full}'",
                obj=label,
                rule=full,
                hint=_did_you_mean(key, allowed, what="allowed keys"),
            )


def _plain_str(label: str, doc: Mapping[str, Any], key: str) -> str:
    if key not in doc:
        raise _missing(label, key)
    value = doc[key]
    if not isinstance(value, str) or not value.strip():
        raise _err(
            label, key, f"must be a non-empty string, got {_show(value)}", f'write {key} = "..."'
        )
    return value


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _parse_quantity(
    label: str, key: str, spec: FieldSpec, raw: Any, real_chip: bool
) -> tuple[Any, Provenance]:
    example = '{ value = ..., source = "hw_reference.md §..." }'
    if not isinstance(raw, dict):
        what = (
            "a number" if isinstance(raw, (int, float)) and not isinstance(raw, bool) else "a value"
        )
        raise _err(
            label,
            key,
            f"is {what} without a source ({_show(raw)})",
            f'write {key.rpartition(".")[2]} = {example}, or status = "unknown" with a '
            "note giving the conservative default",
        )
    _check_keys(label, key, raw, QUANTITY_KEYS)
    if "value" not in raw:
        raise _missing(label, f"{key}.value")
    status = raw.get("status", "cited")
    if status not in STATUSES:
        raise _err(
            label,
            f"{key}.status",
            f"has unknown value {status!r}",
            _did_you_mean(str(status), STATUSES, what="statuses"),
        )
    source = raw.get("source")
    note = raw.get("note")
    for sub, text in (("source", source), ("note", note)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise _err(
                label,
                f"{key}.{sub}",
                f"must be a non-empty string, got {_show(text)}",
                f'write {sub} = "..."',
            )
    if status in ("cited", "derived") and source is None:
        raise _err(
            label,
            key,
            f"is a number without a source (status {status!r})",
            'add source = "hw_reference.md §..., <paper or code>" or, if the number is not '
            'published, status = "unknown" and a note explaining the default',
        )
    if status == "unknown" and note is None:
        raise _err(
            label,
            key,
            "is marked unknown but has no note",
            'add note = "conservative default: <why this value>"',
        )
    if status == "synthetic":
        if real_chip:
            raise _err(
                label,
                key,
                "is synthetic in a file with real_chip = true",
                'cite the number, or mark it status = "unknown" with a note',
            )
        if source is None and note is None:
            raise _err(
                label,
                key,
                "is synthetic but has neither source nor note",
                'add note = "design value of this model chip"',
            )
    value = _check_value(label, key, spec, raw["value"])
    return value, Provenance(key=key, status=status, source=source, note=note)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_bool(x: Any) -> bool:
    return isinstance(x, bool)


def _as_float(v: Any) -> tuple[bool, Any]:
    if (_is_int(v) or isinstance(v, float)) and math.isfinite(v):
        return True, float(v)
    return False, v


def _as_pair(test: Callable[[Any], bool]) -> Callable[[Any], tuple[bool, Any]]:
    def convert(v: Any) -> tuple[bool, Any]:
        if isinstance(v, list) and len(v) == 2 and all(test(x) for x in v):
            return True, tuple(v)
        return False, v

    return convert


def _as_int_pairs(v: Any) -> tuple[bool, Any]:
    if (
        isinstance(v, list)
        and bool(v)
        and all(isinstance(p, list) and len(p) == 2 and all(_is_int(x) for x in p) for p in v)
    ):
        return True, tuple(tuple(p) for p in v)
    return False, v


def _as_int_list(v: Any) -> tuple[bool, Any]:
    if isinstance(v, list) and bool(v) and all(_is_int(x) for x in v):
        return True, tuple(v)
    return False, v


def _as_str_list(v: Any) -> tuple[bool, Any]:
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return True, tuple(v)
    return False, v


#: per field kind: the check and conversion of a TOML value, as (ok, converted value)
_CONVERT: dict[str, Callable[[Any], tuple[bool, Any]]] = {
    "int": lambda v: (_is_int(v), v),
    "float": _as_float,
    "bool": lambda v: (_is_bool(v), v),
    "str": lambda v: (isinstance(v, str), v),
    "int_pair": _as_pair(_is_int),
    "bool_pair": _as_pair(_is_bool),
    "int_pairs": _as_int_pairs,
    "int_list": _as_int_list,
    "str_list": _as_str_list,
}


def _check_value(label: str, key: str, spec: FieldSpec, value: Any) -> Any:
    kind = spec.kind
    if spec.per_core and isinstance(value, list):
        if not value or not all(_is_int(v) for v in value):
            raise _err(
                label,
                key,
                f"must be an integer or a list of integers (one per core), got {_show(value)}",
                "write value = 1024 or value = [65536, 32768, ...]",
            )
        for v in value:
            _check_min(label, key, spec, v)
        return tuple(value)
    ok, value = _CONVERT[kind](value)
    if not ok:
        raise _err(
            label,
            key,
            f"must be {TYPE_WORDS[kind]}, got {_show(value)}",
            f"see the meaning and units of '{key}' in docs/targets.md",
        )
    if spec.choices:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item not in spec.choices:
                raise _err(
                    label,
                    key,
                    f"has unknown value {item!r}",
                    _did_you_mean(item, spec.choices, what="choose one of"),
                )
    if kind in ("int", "float"):
        _check_min(label, key, spec, value)
    elif kind in ("int_pair", "int_list"):
        for v in value:
            _check_min(label, key, spec, v)
    return value


#: upper bounds of integer fields, by unit (docs/targets.md): no chip has wider words or
#: longer native delays, and larger values would make compile work without bound
_MAX_BY_UNIT = {"bits": 64, "steps": 2**16}
_MAX_INT = 2**40
_MAX_CORES = 2**24


def _check_min(label: str, key: str, spec: FieldSpec, v: float) -> None:
    top = _MAX_BY_UNIT.get(spec.unit, _MAX_INT) if spec.kind in ("int", "int_pair",
                                                                  "int_list") else None
    if top is not None and v > top:
        raise _err(label, key, f"must be <= {top:,}, got {v:g}",
                   "no chip has a larger value; check the units in docs/targets.md",
                   need=v, limit=top)
    if spec.min is not None and v < spec.min:
        bound = int(spec.min) if float(spec.min).is_integer() else spec.min
        raise _err(
            label,
            key,
            f"must be >= {bound}, got {v}",
            ("budgets, widths and costs cannot be negative; "
             "omit an optional limit that does not exist") if spec.min >= 0 else
            "no chip has a smaller value; check the units in docs/targets.md",
            need=v,
            limit=spec.min,
        )


def _build_topology(label: str, v: dict[str, Any]) -> Topology:
    grid = v["chip_grid"]
    sizes = (v["chips_per_system"] * v["cores_per_chip"],
             grid[0] * grid[1] * v["node_grid"][0] * v["node_grid"][1])
    if max(sizes) > _MAX_CORES:  # before anything per chip or core is built
        raise _err(label, "topology", f"describes {max(sizes):,} cores or routers; at most "
                   f"{_MAX_CORES:,} are supported", "check chip_grid, node_grid and the counts",
                   need=max(sizes), limit=_MAX_CORES)
    chips = v["chips"]
    if chips is None:
        chips = tuple((x, y) for y in range(grid[1]) for x in range(grid[0]))
    if len(set(chips)) != len(chips):
        raise _err(label, "topology.chips", "lists a chip twice", "list each chip coordinate once")
    for x, y in chips:
        if not (0 <= x < grid[0] and 0 <= y < grid[1]):
            raise _err(
                label,
                "topology.chips",
                f"has chip ({x}, {y}) outside chip_grid {grid}",
                "enlarge topology.chip_grid or fix the coordinate",
            )
    if len(chips) != v["chips_per_system"]:
        raise _err(
            label,
            "topology.chips_per_system",
            f"is {v['chips_per_system']} but the topology has {len(chips)} chips",
            "chips_per_system must equal the number of chips in 'chips' (or "
            "chip_grid x * y when 'chips' is omitted)",
            need=v["chips_per_system"],
            limit=len(chips),
        )
    wrap = v["wrap"] if v["wrap"] is not None else (False, False)
    topo = Topology(
        kind=v["kind"],
        chip_grid=grid,
        chips=chips,
        chips_per_system=v["chips_per_system"],
        wrap=wrap,
        node_grid=v["node_grid"],
        cores_per_node=v["cores_per_node"],
        cores_per_chip=v["cores_per_chip"],
    )
    slots = topo.nodes_per_chip * topo.cores_per_node
    if topo.cores_per_chip > slots:
        raise _err(
            label,
            "topology.cores_per_chip",
            f"is {topo.cores_per_chip} but node_grid {topo.node_grid} x cores_per_node "
            f"{topo.cores_per_node} gives only {slots} core slots",
            "enlarge node_grid or cores_per_node, or lower cores_per_chip",
            need=topo.cores_per_chip,
            limit=slots,
        )
    if topo.kind == "triangular_torus" and topo.node_grid != (1, 1):
        raise _err(
            label,
            "topology.node_grid",
            f"must be [1, 1] for kind 'triangular_torus' (one router per chip), got "
            f"{list(topo.node_grid)}",
            "write node_grid = { value = [1, 1], ... }",
        )
    if any(wrap) and len(chips) != grid[0] * grid[1]:
        raise _err(
            label,
            "topology.wrap",
            "wraps a chip grid that has holes",
            "wrap-around needs every chip of chip_grid present (omit 'chips')",
        )
    if topo.kind in ("speck_layers", "full") and any(wrap):
        raise _err(
            label, "topology.wrap", f"has no meaning for kind {topo.kind!r}", "remove topology.wrap"
        )
    return topo


def _check_consistency(
    label: str,
    topo: Topology,
    core: CoreBudget,
    fmt: NumberFormat,
    caps: Capabilities,
    conv: ConvolutionLimits | None,
) -> None:
    if core.min_delay > core.max_delay:
        raise _err(
            label,
            "core_budget.min_delay",
            f"({core.min_delay}) is greater than 'core_budget.max_delay' ({core.max_delay})",
            "min_delay must be <= max_delay (both in steps)",
            need=core.min_delay,
            limit=core.max_delay,
        )
    for fname in ("neurons", "synaptic_memory_words", "bias_memory_words"):
        value = getattr(core, fname)
        if isinstance(value, tuple) and len(value) != topo.cores_per_chip:
            raise _err(
                label,
                f"core_budget.{fname}",
                f"lists {len(value)} per-core values but cores_per_chip is {topo.cores_per_chip}",
                "give one value per core, or a single value",
                need=len(value),
                limit=topo.cores_per_chip,
            )
    if fmt.weight_exponent_min > fmt.weight_exponent_max:
        raise _err(
            label,
            "formats.weight_exponent_min",
            f"({fmt.weight_exponent_min}) is greater than 'formats.weight_exponent_max' "
            f"({fmt.weight_exponent_max})",
            "write min <= max; [0, 0] means no exponent",
        )
    if caps.graded_spikes != (caps.graded_spike_bits > 0):
        raise _err(
            label,
            "capabilities.graded_spike_bits",
            f"is {caps.graded_spike_bits} but graded_spikes is {str(caps.graded_spikes).lower()}",
            "graded spikes need a payload width > 0; binary spikes have width 0",
        )
    if not caps.reset_modes:
        raise _err(
            label,
            "capabilities.reset_modes",
            "is empty",
            'list at least one of "hard", "soft", "none"',
        )
    if caps.convolution_hardware and conv is None:
        raise _missing(label, "convolution", section=True)
    if conv is not None and not caps.convolution_hardware:
        raise _err(
            label,
            "convolution",
            "is given but capabilities.convolution_hardware is false",
            "remove [convolution] or set convolution_hardware true",
        )
    if core.synapse_accounting == "word_per_synapse" and core.row_header_words is None:
        raise _missing(label, "core_budget.row_header_words")
    if topo.kind == "speck_layers" and core.max_destinations is None:
        raise _missing(label, "core_budget.max_destinations")

