"""The binary-block engine in the Amaranth simulator: small random layers of every kind (stride
1 / 2 with the concat downsample, both forms, pow2 / trained / no RPReLU, with and without
RSign, both pad bits, several lane / bit-per-cycle foldings), two images back to back, random
input gaps and output stalls, every output element compared with the integer reference.
The full-size layers of the trained / calibrated network run on Verilator in ``sim/``."""

import dataclasses

import numpy as np
import pytest

from bincount.errors import BincountError
from bincount.gateware.block_engine import BinaryBlockEngine
from bincount.gateware.block_params import block_params, bram_blocks
from bincount.gateware.stage_engine import StageEngine
from bincount.hw.engine_emit import emit_stage

from engine_cases import from_beats, reference_block, run_stream, tiny_export, to_beats
from pipeline_sim import elaborated

CASES = [
    # cin, cout, stride, size, form, rsign, rprelu, pad_bit, lanes, bits_per_cycle, stall
    (8, 8, 1, 6, "binarized", True, "pow2", 1, 4, 8, 0.3),
    (8, 16, 2, 6, "binarized", True, "pow2", 1, 4, 8, 0.3),
    (16, 32, 2, 4, "binarized", True, "trained", 1, 2, 16, 0.4),
    (16, 16, 1, 5, "binarized", False, None, 0, 8, 4, 0.2),
    (8, 16, 2, 8, "baseline", True, "trained", 1, 4, 4, 0.3),
    (16, 16, 1, 4, "baseline", True, "pow2", 1, 16, 16, 0.5),
    (8, 8, 1, 3, "baseline", False, None, 1, 8, 8, 0.0),
    # bit words of max(B, P) bits, several per pixel (B > P; B < P; stride 2)
    (32, 32, 1, 4, "binarized", True, "pow2", 1, 4, 8, 0.3),
    (16, 32, 2, 4, "baseline", True, "trained", 1, 2, 4, 0.3),
]


def _run(cin, cout, stride, size, form, rsign, rprelu, pad_bit, lanes, bpc, stall, seed=0,
         images=2, split=None, weights="memory", post=None):
    ex = tiny_export(cin, cout, stride, size, form, rsign, rprelu, pad_bit, seed=seed)
    rng = np.random.default_rng(seed + 1)
    xs = [rng.integers(-700, 700, (cin, size, size)) for _ in range(images)]
    xs[0][:, 0, 0] = 32767                                  # saturation of conv + shortcut
    xs[-1][:, -1, -1] = -32768
    p = dataclasses.replace(block_params(ex, "stage1.conv1", lanes, bpc, weights),
                            split_weights=split, post_lanes=post)
    dut = BinaryBlockEngine(p)
    beats = sum((to_beats(x, lanes) for x in xs), [])
    ho = size // stride
    per = ho * ho * cout // lanes
    wstream = p.weight_words() * (ho * ho * images) if weights == "stream" else None
    got, cycles = run_stream(dut, beats, images * per, seed=seed, gap=stall, stall=stall,
                             weights=wstream)
    for k, x in enumerate(xs):
        exp = reference_block(ex, x)
        out = from_beats(got[k * per:(k + 1) * per], cout, ho, lanes)
        bad = np.argwhere(out != exp)
        assert len(bad) == 0, (f"image {k}: {len(bad)} of {out.size} outputs differ; first "
                               f"[c, y, x] = {bad[0].tolist()}: expected "
                               f"{exp[tuple(bad[0])]}, got {out[tuple(bad[0])]}")
    return p, cycles


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_block_engine_matches_reference(case):
    _run(*case)


SHARED = [
    # cin, cout, stride, size, form, rsign, rprelu, pad_bit, lanes, bpc, stall, post_lanes
    (8, 8, 1, 6, "binarized", True, "pow2", 1, 4, 8, 0.3, 1),         # S = 4, F = 9
    (16, 32, 2, 4, "binarized", True, "trained", 1, 2, 16, 0.4, 1),   # S = 2, F = 9
    (16, 16, 1, 5, "binarized", False, None, 0, 8, 4, 0.2, 1),        # S = 8, F = 36
    (8, 16, 2, 8, "baseline", True, "trained", 1, 4, 4, 0.3, 2),      # S = 2, F = 18
    (16, 16, 1, 4, "baseline", True, "pow2", 1, 16, 16, 0.5, 2),      # S = 8, F = 9
    (8, 8, 1, 3, "binarized", True, "pow2", 1, 8, 8, 0.0, 1),         # S = 8, F = 9, no stalls
]


@pytest.mark.parametrize("case", SHARED, ids=lambda c: "-".join(map(str, c)))
def test_shared_post_popcount_units_match_reference(case):
    """post_lanes < lanes: the lanes' counts pass through post_lanes shared units, slice by
    slice, and the outputs still equal the reference (with gaps and stalls)."""
    *knobs, post = case
    p, cycles = _run(*knobs, post=post)
    assert p.shared_post and p.post_params().lanes == post
    dut = BinaryBlockEngine(p)
    plain = BinaryBlockEngine(dataclasses.replace(p, post_lanes=None))
    assert dut.pipeline_latency == plain.pipeline_latency + dut.serial_latency + \
        p.lanes // post - 1


@pytest.mark.parametrize("post, message", [
    (3, r"post_lanes must divide lanes = 4 \(1\.\.4\), got 3"),
    (0, r"post_lanes must divide lanes = 4"),
    (True, r"post_lanes must divide lanes = 4"),
])
def test_bad_post_lanes_are_rejected(post, message):
    ex = tiny_export(8, 8, 1, 4, "binarized", True, "pow2", 1)
    with pytest.raises(BincountError, match=message):
        block_params(ex, "stage1.conv1", 4, 8, post_lanes=post)


def test_weight_ram_style_reaches_the_weight_memories():
    from amaranth.back import verilog

    ex = tiny_export(8, 8, 1, 4, "binarized", True, "pow2", 1)
    text = verilog.convert(BinaryBlockEngine(block_params(ex, "stage1.conv1", 4, 8,
                                                          weight_ram="block")),
                           name="b", emit_src=False)
    assert text.count('ram_style = "block"') >= 1
    with pytest.raises(BincountError, match=r"weight_ram must be one of auto, block, logic, "
                                            r"got 'bram'"):
        block_params(ex, "stage1.conv1", 4, 8, weight_ram="bram")


@pytest.mark.parametrize("post", [None, 1])
def test_constant_ram_style_reaches_the_three_constant_roms(post):
    from amaranth.back import verilog

    ex = tiny_export(8, 8, 1, 4, "binarized", True, "pow2", 1)
    p = block_params(ex, "stage1.conv1", 4, 8, post_lanes=post, constant_ram="logic")
    assert p.rsign
    text = verilog.convert(BinaryBlockEngine(p), name="b", emit_src=False)
    # the RSign biases, the conv constants and the RPReLU constants; the weights left alone
    assert text.count('ram_style = "logic"') == 3 and 'ram_style = "block"' not in text
    with pytest.raises(BincountError, match=r"constant_ram must be one of auto, block, logic, "
                                            r"got 'lut'"):
        block_params(ex, "stage1.conv1", 4, 8, constant_ram="lut")


def test_post_lanes_must_keep_up_with_the_folds():
    """P / post_lanes cycles per group must be fewer than its F folds."""
    ex = tiny_export(16, 16, 1, 4, "binarized", True, "pow2", 1)
    with pytest.raises(BincountError, match=r"16 cycles per channel group, not fewer than its "
                                            r"F = 9 folds; expected post_lanes >= 2"):
        block_params(ex, "stage1.conv1", 16, 16, post_lanes=1)
    assert block_params(ex, "stage1.conv1", 16, 16, post_lanes=2).post_params().lanes == 2


@pytest.mark.parametrize("case", [
    (32, 32, 1, 4, "binarized", True, "pow2", 1, 4, 8, 0.3),      # Cin/B = 4 blocks of tap 8
    (8, 16, 2, 4, "baseline", True, "trained", 1, 8, 8, 0.3),     # one block, 1 bit a lane
    (16, 32, 2, 4, "binarized", True, "pow2", 1, 4, 8, 0.3),      # stride 2, two blocks
    (32, 32, 1, 4, "binarized", True, "pow2", 1, 16, 8, 0.3),     # P > B: two blocks a word
    (32, 32, 1, 3, "binarized", False, None, 0, 2, 16, 0.5),      # 2-bit slices, pad bit 0
    (16, 16, 1, 4, "baseline", True, "trained", 1, 4, 8, 0.0),
], ids=lambda c: "-".join(map(str, c)))
def test_split_weights_match_reference(case):
    p, cycles = _run(*case, split=True)
    assert [name for name, _, _ in p.weight_memories()] == ["weights", "weights_tap8"]
    assert p.folds == 8 * p.cin // p.bits_per_cycle
    assert p.bits_per_fold == 9 * p.bits_per_cycle // 8
    if case[-1] == 0.0:                   # the split saves the folds of tap 8
        whole, cycles_whole = _run(*case, split=False)
        assert whole.folds == 9 * p.cin // p.bits_per_cycle
        saved = 2 * (whole.ideal_cycles - p.ideal_cycles)        # two images
        # (and the pipeline latencies differ by a few cycles)
        assert saved <= cycles_whole - cycles <= saved + 8, (cycles_whole, cycles, saved)


def test_split_weights_with_shared_post_popcount_units():
    """F = 8*Cin/B is a power of two with split weights: S = P/Q slices must stay below it
    (a cycle between two groups' slices, in which a group's shortcut leaves its queue)."""
    case = (8, 8, 1, 3, "binarized", True, "pow2", 1, 8, 8, 0.0)
    with pytest.raises(BincountError, match=r"post_lanes = 1 takes lanes / post_lanes = 8 "
                                            r"cycles per channel group, not fewer than its F = "
                                            r"8 folds; expected post_lanes >= 2"):
        _run(*case, images=1, split=True, post=1)
    p, _ = _run(*case, split=True, post=2)
    assert p.weight_split and p.folds == 8 and p.lanes // p.post_lanes == 4


@pytest.mark.parametrize("case", [
    (16, 16, 1, 4, "binarized", True, "pow2", 1, 4, 4, 0.3),
    (8, 16, 2, 4, "baseline", True, "trained", 1, 8, 8, 0.3),
    (8, 8, 1, 3, "binarized", False, None, 0, 2, 8, 0.0),
], ids=lambda c: "-".join(map(str, c)))
def test_streamed_weights_match_reference(case):
    p, cycles = _run(*case, weights="stream")
    assert not p.weight_split
    if case[-1] == 0.0:        # a weight word every cycle: as fast as on-chip weights
        assert cycles == _run(*case)[1]


def test_streamed_weights_are_a_port_and_no_memory():
    ex = tiny_export(8, 8, 1, 3, "binarized", True, "pow2", 1)
    p = block_params(ex, "stage1.conv1", 4, 8, weights="stream")
    dut = BinaryBlockEngine(p)
    assert dut.w.payload.shape().width == 32 and "w__payload" in dut.port_doc
    plain = BinaryBlockEngine(block_params(ex, "stage1.conv1", 4, 8))
    assert "w" not in plain.signature.members
    with pytest.raises(BincountError, match="weights must be 'memory' or 'stream', got 'rom'"):
        block_params(ex, "stage1.conv1", 4, 8, weights="rom")


def test_weights_split_where_it_saves_block_rams():
    # stage-3 geometry: 32 groups x 36 folds of 512 bits = 1,024 + 128 words in banks of 1,024
    # (29 + 15 blocks); split: 1,024 words (29) + 1,024 x 64 bits (4)
    assert bram_blocks(512, 1152) == 44
    assert bram_blocks(512, 1024) + bram_blocks(64, 1024) == 33
    assert bram_blocks(18, 512) == 1 and bram_blocks(512, 72) == 15
    assert bram_blocks(36, 1024) == 2                 # one bank of 1,024 x 18 RAMs, two of them
    assert bram_blocks(18, 1024) == 1                 # ... 1,024 of 18 bits
    assert bram_blocks(4, 18432) == 5                 # 16,384 x 1 (4) and 2,048 x 9 (1)
    assert bram_blocks(4, 18432, bank_depth=512) == 36
    for cin, split in ((64, False), (128, False), (256, True)):
        ex = tiny_export(cin, cin, 1, 2, "binarized", True, "pow2", 1)
        p = block_params(ex, "stage1.conv1", 8, 64)
        assert p.weight_split is split
        mems = p.weight_memories()
        assert len(mems) == 1 + split
        assert sum(len(w) * width for _, width, w in mems) == 9 * cin * cin
    with pytest.raises(BincountError, match="split weights need bits_per_cycle divisible by 8, "
                                            "got 4"):
        dataclasses.replace(block_params(tiny_export(8, 8, 1, 3, "binarized", True, "pow2", 1),
                                         "stage1.conv1", 1, 4), split_weights=True).weight_split


def test_cycles_close_to_ideal_without_stalls():
    p, cycles = _run(16, 16, 1, 8, "binarized", True, "pow2", 1, 4, 16, 0.0, images=3)
    ideal = 3 * p.ideal_cycles
    assert ideal <= cycles <= 1.15 * ideal + 200, (cycles, ideal)


@pytest.mark.parametrize("knobs, message", [
    ((3, 8), "lanes must be a power of two"),
    ((16, 8), "lanes = 16 is too large"),
    ((4, 16), "bits_per_cycle = 16 is too large"),
    ((4, 0), "bits_per_cycle must be a power of two"),
    ((4, 2.0), "bits_per_cycle must be a power-of-two integer"),
])
def test_bad_knobs_are_rejected(knobs, message):
    ex = tiny_export(8, 8, 1, 4)
    with pytest.raises(BincountError, match=message):
        block_params(ex, "stage1.conv1", *knobs)


def test_unknown_layer_and_real_downsample_are_rejected():
    ex = tiny_export(8, 16, 2, 4)
    with pytest.raises(BincountError, match="unknown layer 'stage9.conv1'"):
        block_params(ex, "stage9.conv1")
    ex["meta"]["layers"][0]["downsample"] = "real"
    with pytest.raises(BincountError, match="shortcut=concat"):
        block_params(ex, "stage1.conv1", 4, 8)
    with pytest.raises(BincountError, match="stage must be one of"):
        StageEngine(ex, 5)


def test_weight_words_follow_the_bit_order():
    ex = tiny_export(8, 8, 1, 4, seed=3)
    p = block_params(ex, "stage1.conv1", 4, 8)
    from bincount.model.export.bits import unpack_bits
    bits = unpack_bits(ex["stage1.conv1.weight_bits"], p.n)
    words = p.weight_words()
    assert len(words) == p.out_groups * p.folds
    for g in range(p.out_groups):
        for f in range(p.folds):
            for lane in range(4):
                field = (words[g * p.folds + f] >> (lane * 8)) & 0xFF
                want = sum(int(b) << i for i, b in enumerate(bits[g * 4 + lane, f * 8:f * 8 + 8]))
                assert field == want


def test_stage_verilog_is_deterministic_and_named():
    ex = tiny_export(8, 8, 1, 4)
    a, man = emit_stage(ex, 1, lanes=4, bits_per_cycle=8)
    b, _ = emit_stage(ex, 1, lanes=4, bits_per_cycle=8)
    assert a == b
    assert man["module"].startswith("bincount_stage1_binarized_p4_b8_")
    names = [q["name"] for q in man["ports"]]
    assert names == ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload",
                     "o__valid", "o__ready"]
    assert man["blocks"][0]["ideal_cycles"] == 4 * 4 * 8 * 72 // 32
    elaborated(BinaryBlockEngine(block_params(ex, "stage1.conv1", 4, 8)))


def test_stage_verilog_with_streamed_weights_has_a_weight_port_per_block():
    ex = tiny_export(8, 8, 1, 4)
    text, man = emit_stage(ex, 1, lanes=4, bits_per_cycle=8, weights="stream")
    assert man["module"].startswith("bincount_stage1_binarized_p4_b8_wstream_")
    assert man["parameters"]["weights"] == "stream"
    assert [b["weights"] for b in man["blocks"]] == ["stream"]
    ports = {q["name"]: (q["direction"], q["width"]) for q in man["ports"]}
    assert ports["w0__payload"] == ("input", 32) and ports["w0__ready"] == ("output", 1)
    plain, plain_man = emit_stage(ex, 1, lanes=4, bits_per_cycle=8)
    assert "weights" not in plain_man["parameters"]
    assert ".block0.weights " in plain and ".block0.weights" not in text   # no weight memory
    assert ".block0.w_queue " in text


def test_generate_stage_engine_from_an_export(tmp_path, capsys, one_torch_thread):
    """``bincount generate stage_engine``: a small calibrated network's stage 2 (stride-2 entry
    with the concat downsample, then three stride-1 blocks), files and manifest; bad input is
    one line and writes nothing."""
    from bincount.cli import main
    from bincount.model.nets.calibrate import calibrated_network
    from bincount.model.export.network_export import export_network

    model, _ = calibrated_network("reactnet18", "qat_cn_times_alpha", 0.125, seed=1, count=8,
                                  shortcut="concat", slopes="pow2")
    path = tmp_path / "net.npz"
    export_network(model, path)
    out = tmp_path / "v"
    assert main(["generate", "stage_engine", "--export", str(path), "--stage", "2",
                 "--lanes", "4", "--bits-per-cycle", "8", "-o", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".v")
    import json
    man = json.loads((out / files[0]).read_text())
    assert man["module"].startswith("bincount_stage2_binarized_p4_b8_")
    assert [b["name"] for b in man["blocks"]] == [f"stage2.conv{j}" for j in range(1, 5)]
    assert man["blocks"][0]["stride"] == 2 and man["blocks"][0]["downsample"] == "concat"
    # without --lanes / --bits-per-cycle: the whole network's defaults, lowered to fit the
    # export (8 and 64 would not fit this narrow network's stage 2)
    from bincount.gateware.network_top import default_knobs
    from bincount.model.export.network_file import load_export
    lanes, bits = default_knobs(load_export(path))
    assert bits[1] < 64
    dflt = tmp_path / "dflt"
    assert main(["generate", "stage_engine", "--export", str(path), "--stage", "2",
                 "-o", str(dflt)]) == 0
    (man_d,) = [p for p in dflt.iterdir() if p.suffix == ".json"]
    assert json.loads(man_d.read_text())["module"].startswith(
        f"bincount_stage2_binarized_p{lanes[1]}_b{bits[1]}_")
    capsys.readouterr()
    ws = tmp_path / "ws"
    assert main(["generate", "stage_engine", "--export", str(path), "--stage", "2",
                 "--lanes", "4", "--bits-per-cycle", "8", "--weights", "stream",
                 "-o", str(ws)]) == 0
    (man_w,) = [p for p in ws.iterdir() if p.suffix == ".json"]
    ports = {q["name"] for q in json.loads(man_w.read_text())["ports"]}
    assert {f"w{j}__payload" for j in range(4)} <= ports
    capsys.readouterr()
    bad = tmp_path / "bad"
    for argv, message in (
            (["--stage", "2", "--weights", "rom"], "--weights must be memory or stream"),
            (["--stage", "2", "--lanes", "3"], ": error: --lanes 3: lanes must be a power of "
                                               "two, got 3"),
            (["--stage", "2", "--lanes", "4", "--bits-per-cycle", "3"],
             ": error: --bits-per-cycle 3: bits_per_cycle must be a power of two"),
            (["--stage", "7"], "--stage 7: stage must be one of 1, 2, 3, 4, got 7"),
            (["--stage", "2", "--n", "9"], "--n does not apply to stage_engine"),
            (["--lanes", "4"], "needs --stage K")):
        assert main(["generate", "stage_engine", "--export", str(path), *argv,
                     "-o", str(bad)]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and message in err[0], err
        assert not bad.exists()
