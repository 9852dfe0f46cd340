"""Emitted Verilog of the designs that are synthesised or simulated, cached by content.

Amaranth takes seconds (a wide lane) to minutes (a stage engine) to convert a design, so the
Verilog is kept in the content-addressed store (:mod:`bincount.hw.cache`, kind ``verilog``)
under a key made of what it is generated from: the design's parameters and
:func:`~bincount.hw.sources.generator_digest` (and, for an engine, the digest of the export's
stage). The text is the emitter's, byte for byte.

- :func:`lane_verilog`: one output lane of the report (no header comment);
- :func:`block_design`: a registry block as ``bincount generate`` writes it, with manifest;
- :func:`engine_design`: a stage engine with manifest;
- :func:`network_design`: the whole-network engine with manifest;
- :func:`board_design`: the board core (UART protocol and network) with manifest.

``cache_dir=None`` converts without the store.
"""

import json
from pathlib import Path

from bincount import protocol
from bincount.hw import board_emit
from bincount.hw.blocks import build_block
from bincount.hw.board_emit import emit_board
from bincount.hw.cache import cache_key, cached
from bincount.hw.emit import emit, verilog_text
from bincount.hw.engine_emit import emit_stage, stage_digest
from bincount.hw.knobs import EngineKnobs
from bincount.hw.network_emit import emit_network, export_digest
from bincount.hw.sources import files_digest, generator_digest

__all__ = ["LANE_BLOCKS", "lane_verilog", "block_design", "engine_design", "network_design",
           "board_design"]

#: Report block name -> OutputLane form.
LANE_BLOCKS = {"threshold_lane": "binarized", "baseline_lane": "baseline"}


def _cached(cache_dir, kind, parts, make, fields):
    if cache_dir is None:
        return make()
    key = cache_key(kind, generator_digest(), *parts)
    return cached(cache_dir, key, make, fields)


def lane_verilog(block, width, *, out_bits=16, cache_dir=None):
    """``(module, verilog_text, parameters, latency)`` of report lane ``block`` (a key of
    :data:`LANE_BLOCKS`) at width ``width``."""
    params = {"form": LANE_BLOCKS[block], "n": int(width), "out_bits": out_bits}

    def make():
        built = build_block("output_lane", **params)
        return {"module": built.module, "parameters": dict(built.parameters),
                "latency": int(built.component.latency),
                "verilog": verilog_text(built.component, built.module)}

    d = _cached(cache_dir, "lane-verilog", [json.dumps(params, sort_keys=True)], make,
                ("module", "verilog", "parameters", "latency"))
    return d["module"], d["verilog"], d["parameters"], d["latency"]


def block_design(block, params, *, cache_dir=None):
    """``(verilog_text, manifest)`` of registry block ``block`` with ``params``
    (:func:`bincount.hw.emit.emit`)."""
    def make():
        text, manifest = emit(block, **params)
        return {"manifest": manifest, "verilog": text}

    d = _cached(cache_dir, "block-verilog", [block, json.dumps(params, sort_keys=True)], make,
                ("manifest", "verilog"))
    return d["verilog"], d["manifest"]


def engine_design(export, stage, knobs=None, *, taps=False, layers=None, cache_dir=None):
    """``(module, verilog_text, manifest)`` of the engine of ``stage`` built from ``export``
    with :class:`~bincount.hw.knobs.EngineKnobs` ``knobs`` (default knobs when None)
    (:func:`bincount.hw.engine_emit.emit_stage`)."""
    knobs = (knobs or EngineKnobs()).for_stage(stage)

    def make():
        text, manifest = emit_stage(export, stage, knobs.lanes, knobs.bits_per_cycle,
                                    taps=taps, layers=layers, weights=knobs.weights,
                                    post_lanes=knobs.post_lanes, weight_ram=knobs.weight_ram,
                                    constant_ram=knobs.constant_ram)
        return {"manifest": manifest, "verilog": text}

    what = {"stage": stage, "lanes": knobs.lanes, "bits_per_cycle": knobs.bits_per_cycle,
            "weights": knobs.weights, "taps": bool(taps), "layers": layers}
    if knobs.post_lanes is not None:
        what["post_lanes"] = knobs.post_lanes
    if knobs.weight_ram != "auto":
        what["weight_ram"] = knobs.weight_ram
    if knobs.constant_ram != "auto":
        what["constant_ram"] = knobs.constant_ram
    d = _cached(cache_dir, "stage-engine-verilog",
                [stage_digest(export, stage), json.dumps(what, sort_keys=True)], make,
                ("manifest", "verilog"))
    return d["manifest"]["module"], d["verilog"], d["manifest"]


def network_design(export, knobs, *, taps=False, plan=None, cache_dir=None):
    """``(verilog_text, manifest)`` of the whole-network engine of ``export`` with ``knobs``
    (the keyword arguments of :func:`bincount.hw.network_emit.emit_network`)."""
    def make():
        text, manifest = emit_network(export, taps=taps, plan=plan, **knobs)
        return {"manifest": manifest, "verilog": text}

    what = {"knobs": knobs, "taps": bool(taps), "plan": plan}
    d = _cached(cache_dir, "network-verilog",
                [export_digest(export), json.dumps(what, sort_keys=True, default=str)], make,
                ("manifest", "verilog"))
    return d["verilog"], d["manifest"]


def board_design(export, knobs, divisor, *, cache_dir=None):
    """``(verilog_text, manifest)`` of the board core of ``export`` with ``knobs`` (``lanes``,
    ``bits_per_cycle``, ``stem_lanes``) and UART ``divisor``
    (:func:`bincount.hw.board_emit.emit_board`)."""
    def make():
        text, manifest = emit_board(export, divisor=divisor, **knobs)
        return {"manifest": manifest, "verilog": text}

    what = {"knobs": knobs, "divisor": divisor}
    # the protocol's numbers and the board emitter live outside the generator digest's files
    sources = files_digest([Path(protocol.__file__), Path(board_emit.__file__)])
    d = _cached(cache_dir, "board-verilog",
                [export_digest(export), sources, json.dumps(what, sort_keys=True, default=str)],
                make,
                ("manifest", "verilog"))
    return d["verilog"], d["manifest"]
