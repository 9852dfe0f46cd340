"""cocotb testbenches of the bincount blocks on Verilator, run by ``pytest sim/``.

A package (not only a folder of test files) so that its test modules do not clash with the
Amaranth-simulator tests of the same names in ``tests/``, and so that the simulator can import
them as ``sim.test_<block>``.
"""
