"""Build an exported network for a board: a bitstream, or a project for the board's tools.

``bincount build`` turns the export into what the board's own tools take.

    bincount build --board BOARD [--export FILE] [-o DIR] [--clock-mhz M] [--seed N]
                   [--baud N] [--lanes P[,P,P,P]] [--bits-per-cycle B[,B,B,B]]
                   [--stem-lanes P0]

BOARD is one of :data:`bincount.hw.boards.BOARDS` (``ulx3s-85f``: a bitstream built with
Yosys, nextpnr-ecp5 and ecppack; ``kv260`` / ``zcu104``: Verilog and a Vivado project script).
Without ``--lanes`` / ``--bits-per-cycle`` / ``--stem-lanes`` the board chooses the knobs
(the fold planner, :mod:`bincount.hw.fold_plan`). The output folder (default
``build/board/<board>/``) is checked before any work; its files are replaced. Bad input gives one
line and exit status 2; so does a failed tool run or a design that misses its timing.
"""

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    from bincount.hw.boards import BOARDS
    from bincount.options import float_in, int_in, seed

    parser.add_argument("--board", metavar="BOARD", required=True,
                        help=f"the board: {', '.join(BOARDS)}")
    parser.add_argument("--export", metavar="FILE",
                        help="the bincount-network export to build (default: the project's "
                             "trained network, networks/reactnet18_w0.25.npz)")
    parser.add_argument("-o", "--out-dir", dest="out_dir", metavar="DIR", default=None,
                        help="output folder (default build/board/<board>/)")
    parser.add_argument("--clock-mhz", dest="clock_mhz", metavar="M", type=float_in(1, 1000),
                        default=None, help="clock of the network (the board's default if not "
                                           "given; ulx3s-85f: 50)")
    parser.add_argument("--seed", metavar="N", type=seed, default=None,
                        help="place-and-route seed (ulx3s-85f; default 1)")
    parser.add_argument("--baud", metavar="N", type=int_in(1), default=None,
                        help="UART bit rate (ulx3s-85f; default 115200)")
    parser.add_argument("--lanes", metavar="P",
                        help="output channels per cycle of every stage (one value or four)")
    parser.add_argument("--bits-per-cycle", dest="bits_per_cycle", metavar="B",
                        help="window bits per lane and cycle of every stage (one value or four)")
    parser.add_argument("--stem-lanes", dest="stem_lanes", metavar="P0",
                        help="lanes of the stem (default: stage 1's)")


def run(args):
    from bincount.hw.boards import board_module, default_out_dir
    from bincount.hw.output_dir import check_output_dir

    module = board_module(args.board)
    if args.out_dir is None:
        args.out_dir = default_out_dir(args.board)
    check_output_dir(args.out_dir)
    return module.build_board(args, args.out_dir)
