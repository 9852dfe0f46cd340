"""Post-popcount operation count per layer (the seed's "hardware computations" table).

Counted, as the seed does (stem + 16 binary convs = 17 layers): the integer multiply + bit
shift that rescales each output element after its accumulation (scale and BN folded to fixed
point, docs/conventions.md "Baseline"). Per layer: ``outputs = Cout * Ho * Wo``;

- baseline: one multiply per output of every counted layer (557,056 for ReActNet-18);
- binarized counting: 0 for every binary conv (threshold compare and select). The stem is a
  real conv; ``stem_rule="seed"`` (default) counts it as 0 too, reproducing the seed's
  "None" model-wide (read as: the stem's BN is folded into its real conv / the next sign's
  threshold, so no separate rescaling multiply remains). ``stem_rule="requantize"`` keeps one
  multiply per stem output in the binarized form as well (65,536 for ReActNet-18).

Not counted in either form: the multiply-accumulates of the real convs themselves (stem,
1x1 downsample shortcuts), shortcut BNs, RPReLU and the FC head.
"""

from bincount.errors import BincountError
from bincount.model.nets.geometry import ConvSpec, network_geometry

__all__ = ["STEM_RULES", "layer_ops", "network_ops", "export_ops", "format_table"]

STEM_RULES = ("seed", "requantize")


def layer_ops(layer, stem_rule="seed"):
    """``{"name", "outputs", "baseline_multiplies", "binarized_multiplies"}`` of one layer."""
    outputs = layer.outputs
    if layer.kind == "binary":
        binarized = 0
    elif stem_rule == "seed":
        binarized = 0
    else:
        binarized = outputs
    return {"name": layer.name, "outputs": outputs, "baseline_multiplies": outputs,
            "binarized_multiplies": binarized}


def network_ops(network="reactnet18", stem_rule="seed"):
    """The per-layer table and totals of ``network``, computed from its geometry."""
    if stem_rule not in STEM_RULES:
        raise BincountError(f"unknown stem rule {stem_rule!r}; expected one of "
                            f"{', '.join(STEM_RULES)}")
    net = network_geometry(network)
    layers = [layer_ops(layer, stem_rule) for layer in net.layers]
    totals = {key: sum(row[key] for row in layers)
              for key in ("baseline_multiplies", "binarized_multiplies")}
    return {"network": net.name, "stem_rule": stem_rule, "layers": layers, "totals": totals}


def export_ops(meta, stem_rule="seed"):
    """:func:`network_ops` of the network an export describes (``meta``: its metadata, any
    width): the stem and the binary layers with the export's shapes."""
    if stem_rule not in STEM_RULES:
        raise BincountError(f"unknown stem rule {stem_rule!r}; expected one of "
                            f"{', '.join(STEM_RULES)}")
    st = meta["stem"]
    specs = [ConvSpec("stem", "real", int(st["cin"]), int(st["cout"]), int(st["k"]), 1,
                      int(st["size"]))]
    specs += [ConvSpec(m["name"], "binary", int(m["cin"]), int(m["cout"]), int(m["k"]),
                       int(m["stride"]), int(m["in_size"])) for m in meta["layers"]]
    layers = [layer_ops(spec, stem_rule) for spec in specs]
    totals = {key: sum(row[key] for row in layers)
              for key in ("baseline_multiplies", "binarized_multiplies")}
    return {"network": meta.get("network"), "width_mult": meta.get("width_mult"),
            "stem_rule": stem_rule, "layers": layers, "totals": totals}


def format_table(result):
    """A plain-text table of :func:`network_ops`'s result."""
    net = network_geometry(result["network"])
    specs = {layer.name: layer for layer in net.layers}
    head = (f"{'layer':<14} {'kind':<6} {'cin->cout':>10} {'stride':>6} {'map':>6} "
            f"{'outputs':>9} {'baseline':>9} {'binarized':>9}")
    lines = [f"{net.title}: post-popcount integer multiplies (+ shift) per image", "", head,
             "-" * len(head)]
    for row in result["layers"]:
        s = specs[row["name"]]
        lines.append(f"{row['name']:<14} {s.kind:<6} {f'{s.cin}->{s.cout}':>10} {s.stride:>6} "
                     f"{f'{s.out_size}x{s.out_size}':>6} {row['outputs']:>9,} "
                     f"{row['baseline_multiplies']:>9,} {row['binarized_multiplies']:>9,}")
    lines.append("-" * len(head))
    t = result["totals"]
    total = f"total ({len(result['layers'])} layers)"
    outputs = sum(row["outputs"] for row in result["layers"])
    lines.append(f"{total:<46} {outputs:>9,} "
                 f"{t['baseline_multiplies']:>9,} {t['binarized_multiplies']:>9,}")
    lines += ["",
              "baseline: y = sat((M_c*d + O_c) >> S), one multiply per output; binarized "
              "counting: y = hi_c if count >= T_c else lo_c, none.",
              f"stem rule {result['stem_rule']!r}: "
              + ("the real stem counts in the baseline only (the seed's 17 layers)."
                 if result["stem_rule"] == "seed" else
                 "the real stem keeps its multiply in both forms."),
              "Not counted: MACs of the real convs (stem, 1x1 downsample shortcuts), RPReLU, "
              "the FC head."]
    return "\n".join(lines)
