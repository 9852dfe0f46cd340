"""The integer side: folding trained layers into integers, the ``.npz`` export formats, the
torch-free integer reference and the golden vectors the hardware is held against."""
