"""Switch between the fused training path and the reference path of the network layers.

The layers of :class:`bincount.model.nets.networks.BinaryResNet` have two implementations of their
float forward and backward:

* the **fused path** (default): custom autograd functions that do the straight-through sign,
  the binarized count and the fake quantisation in a few elementwise passes each, a binary
  convolution whose constant padding is folded into a per-channel bias (so the convolution pads
  with zeros, which oneDNN does inside the kernel), and one function for the whole fixed-point
  RPReLU;
* the **reference path**: the plain tensor expressions of :mod:`bincount.model.layers.ste`,
  :mod:`bincount.model.layers.fake_quant` and the layers (``hard + (soft - soft.detach())``), as
  written first.

Both give the same forward values (the binary parts, counts and fixed-point values are exact in
both) and the same gradients up to float rounding (sums taken in another order); the tests
compare them (``tests/test_fastpath.py``) and ``bench/train_speed.py`` times one against the
other. Use :func:`reference_path` to run the reference path::

    with fastpath.reference_path():
        loss = F.cross_entropy(model(x), y)
"""

from contextlib import contextmanager

__all__ = ["enabled", "set_enabled", "reference_path"]

_ENABLED = True


def enabled():
    """Whether the layers use the fused path."""
    return _ENABLED


def set_enabled(flag):
    """Use the fused path (``True``) or the reference path (``False``); returns the old value."""
    global _ENABLED
    old, _ENABLED = _ENABLED, bool(flag)
    return old


@contextmanager
def reference_path(active=True):
    """Run the reference path inside the ``with`` block (``active=False``: leave it as it is)."""
    old = set_enabled(not active) if active else _ENABLED
    try:
        yield
    finally:
        set_enabled(old)
