"""Cycles per image of stage engines measured in simulation, kept in the build store.

A measurement (``bench/engine_cycles.py`` runs the engines on Verilator) is recorded with
:func:`record_engine_cycles` and found again with :func:`engine_cycles` under a key of what
determines an engine's timing: the shape of its layers (from the manifest), its knobs (lanes,
bits per cycle, weight source, shared post-popcount units; not the memory styles, which only
ask the synthesis tool for a kind of RAM) and the gateware sources
(:func:`~bincount.hw.sources.gateware_digest`). The layer values (weights, thresholds) do not
enter: the engines' timing never depends on the data. A measurement of
other gateware, knobs or shapes is therefore never used; the report then gives the ideal cycles.

The whole network (``sim/test_network.py`` records each run with
:func:`record_network_cycles`, found again with :func:`network_cycles`) is keyed on its
parameters (form, the knobs of every part and the digest of the export, so only the same
network is matched; the observation taps are left out: they do not change the timing) and the
gateware sources.
"""

import json

from bincount.hw.cache import cache_key, default_cache_dir, read_entry, write_entry
from bincount.hw.sources import gateware_digest

__all__ = ["engine_cycles", "record_engine_cycles", "cycles_key", "network_cycles",
           "record_network_cycles", "network_cycles_key"]

#: Fields of a manifest block that make up the shape of a layer.
_SHAPE = ("name", "cin", "cout", "stride", "in_size", "out_size", "form", "rsign",
          "downsample", "rprelu")
#: Fields of a measurement that are kept.
_MEASURED = ("interval", "image_latency", "layer_cycles", "ideal_cycles", "stall", "repeats")


def cycles_key(manifest):
    """Store key of the timing of the engine described by ``manifest``."""
    p = manifest["parameters"]
    what = {"stage": p["stage"], "lanes": p["lanes"], "bits_per_cycle": p["bits_per_cycle"],
            "weights": p.get("weights", "memory"), "post_lanes": p.get("post_lanes"),
            "blocks": [{k: b.get(k) for k in _SHAPE} for b in manifest["blocks"]]}
    return cache_key("engine-cycles", gateware_digest(), json.dumps(what, sort_keys=True))


def _record(key, entry, cache_dir):
    if cache_dir == "default":
        cache_dir = default_cache_dir("cycles")
    write_entry(cache_dir, key, entry, warn="cycles")
    return entry


def _read(key, cache_dir):
    """The entry under ``key`` if it holds an interval, else None."""
    if cache_dir == "default":
        cache_dir = default_cache_dir("cycles")
    entry = read_entry(cache_dir, key)
    return entry if entry is not None and entry.get("interval") else None


def record_engine_cycles(manifest, measured, cache_dir="default"):
    """Keep ``measured`` (``interval`` and ``image_latency`` in cycles, from the engine's
    simulation) for the engine of ``manifest``; return the stored entry."""
    entry = {k: measured[k] for k in _MEASURED if k in measured}
    entry.update({"module": manifest["module"], "stage": manifest["parameters"]["stage"],
                  "form": manifest["blocks"][0]["form"]})
    return _record(cycles_key(manifest), entry, cache_dir)


def engine_cycles(manifest, cache_dir="default"):
    """The measurement recorded for the engine of ``manifest``, or None."""
    return _read(cycles_key(manifest), cache_dir)


#: Fields of a whole-network measurement that are kept.
_NETWORK_MEASURED = ("interval", "result_cycles", "ideal_cycles", "stall", "images")


def network_cycles_key(manifest):
    """Store key of the timing of the whole network described by ``manifest``."""
    p = {k: v for k, v in manifest["parameters"].items() if k != "taps"}
    return cache_key("network-cycles", gateware_digest(), json.dumps(p, sort_keys=True))


def record_network_cycles(manifest, measured, cache_dir="default"):
    """Keep ``measured`` (``interval``: cycles between two images' results, from the whole
    network's simulation) for the network of ``manifest``; return the stored entry."""
    entry = {k: measured[k] for k in _NETWORK_MEASURED if k in measured}
    entry["module"] = manifest["module"]
    return _record(network_cycles_key(manifest), entry, cache_dir)


def network_cycles(manifest, cache_dir="default"):
    """The measurement recorded for the whole network of ``manifest``, or None."""
    return _read(network_cycles_key(manifest), cache_dir)
