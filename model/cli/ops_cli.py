"""Print the post-popcount multiplies per layer of a network (text table or JSON)."""

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    from bincount.model.nets.geometry import NETWORKS
    from bincount.model.nets.ops import STEM_RULES

    parser.add_argument("--network", default="reactnet18", choices=sorted(NETWORKS),
                        help="network geometry (default: reactnet18)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--stem-rule", default="seed", choices=STEM_RULES,
                        help="how the real stem counts in the binarized form: 'seed' (0, as "
                             "the seed's table) or 'requantize' (one multiply per output)")


def run(args):
    import json

    from bincount.model.nets.ops import format_table, network_ops

    result = network_ops(args.network, args.stem_rule)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
