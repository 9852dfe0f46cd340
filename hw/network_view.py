"""The network-wide view of the lane report: post-popcount multiplies per image in each form
(from :mod:`bincount.model.nets.ops`, computed from the network geometry) and an *estimate* of what
``lanes`` parallel lanes per stage cost in each form: lanes x the per-lane cost at the stage's
lane width, summed over the four binary stages. The estimate counts lanes only (no buffers,
control, line memories or routing) and is no substitute for synthesising a whole network.
"""

from bincount.hw.designs import LANE_BLOCKS
from bincount.model.nets.geometry import network_geometry
from bincount.model.nets.ops import network_ops as ops_table

__all__ = ["network_ops", "network_view"]


def network_ops(network="reactnet18"):
    """The ops table of ``network`` (:func:`bincount.model.nets.ops.network_ops`, as ``bincount ops
    --json``), each layer joined with its geometry: ``n`` (= k*k*Cin), ``stage``, ``kind``."""
    table = ops_table(network)
    net = network_geometry(network)
    table["title"] = net.title
    specs = {layer.name: layer for layer in net.layers}
    for row in table["layers"]:
        spec = specs[row["name"]]
        row.update({"kind": spec.kind, "n": spec.n, "stage": spec.stage})
    return table


def network_view(rows, lanes, network="reactnet18", ops_table=None):
    """Network-wide view: multiplies per image per form, and the estimated LUT/FF/DSP cost of
    ``lanes`` parallel lanes per binary stage in each form (lanes x per-lane synthesis result at
    the stage's lane width, summed over stages)."""
    table = ops_table if ops_table is not None else network_ops(network)
    totals = table["totals"]
    stages, other = {}, []
    for layer in table["layers"]:
        n, stage = layer["n"], layer["stage"]
        if layer["kind"] != "binary":
            # the real-valued stem is not an XNOR-popcount lane; its multiplies still count
            other.append({k: layer[k] for k in ("name", "kind", "outputs",
                                                "baseline_multiplies", "binarized_multiplies")})
            continue
        s = stages.setdefault(int(stage), {"stage": int(stage), "layers": 0, "outputs": 0,
                                           "baseline_multiplies": 0,
                                           "binarized_multiplies": 0, "widths": set()})
        s["layers"] += 1
        s["outputs"] += int(layer["outputs"])
        s["baseline_multiplies"] += int(layer["baseline_multiplies"])
        s["binarized_multiplies"] += int(layer["binarized_multiplies"])
        s["widths"].add(int(n))
    per_lane = {(r["block"], r["width"]): r for r in rows}
    stage_list, missing = [], []
    for k in sorted(stages):
        s = stages[k]
        widths = sorted(s.pop("widths"))
        s["lane_width"] = widths[-1]   # lanes sized for the widest layer of the stage
        s["layer_widths"] = widths
        s["lanes"] = lanes
        for block in LANE_BLOCKS:
            row = per_lane.get((block, s["lane_width"]))
            if row is None:
                missing.append(s["lane_width"])
                s[block] = None
            else:
                s[block] = {res: lanes * int(row.get(res, row["lut"]))
                            for res in ("lut", "lut_equiv", "ff", "dsp")}
        stage_list.append(s)
    missing = sorted(set(missing))
    view = {
        "network": table.get("network", network),
        "title": table.get("title", network),
        "multiplies_per_image": {
            "baseline_lane": int(totals["baseline_multiplies"]),
            "threshold_lane": int(totals["binarized_multiplies"]),
        },
        "multiplies_source": (f"bincount.model.nets.ops.network_ops({network!r}) from the network "
                              f"geometry (stem rule {table.get('stem_rule')!r})"),
        "lanes_per_stage": lanes,
        "stages": stage_list,
        "other_layers": other,
        "estimate": None,
        "estimate_note": (
            "estimate from per-lane synthesis: lanes per stage x the cost of one lane at the "
            "stage's lane width (the widest layer of the stage; narrower layers use the same "
            "lanes), summed over the binary stages; lanes only, without buffers, control, "
            "memories or routing; the real-valued stem and head are not included"),
    }
    if missing:
        view["estimate_note"] = (f"not estimated, as there is no per-lane result at lane width(s) "
                                 f"{', '.join(map(str, missing))}; run the report with those "
                                 f"widths (the defaults) to get the network-wide cost")
    elif stage_list:
        view["estimate"] = {block: {res: sum(s[block][res] for s in stage_list)
                                    for res in ("lut", "lut_equiv", "ff", "dsp")}
                            for block in LANE_BLOCKS}
    return view
