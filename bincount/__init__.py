"""bincount: hardware generator and RTL verification suite for binarized-counting BNNs.

The installed distribution maps the repository folders onto one namespace:
``bincount.model`` (``model/``), ``bincount.gateware`` (``gateware/``) and
``bincount.hw`` (``hw/``).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
