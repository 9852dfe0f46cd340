"""bincount.model: the networks in PyTorch and their integer form, by role along the data path

- ``layers/``: the PyTorch layers of both forms;
- ``nets/``: ReActNet-18 / Bi-Real-Net-18 built from the geometry, variants, operation count;
- ``export/``: folding into integers, the export formats, the torch-free integer reference and
  golden vectors (what the hardware is held against);
- ``data/``: CIFAR-10 loaders, batches, download; ``training/``: training and evaluation;
- ``cli/``: the command-line verbs.
"""
