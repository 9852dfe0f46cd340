"""The PyTorch layers of both forms: binary convolution with BN or threshold folding, RSign,
RPReLU, shortcuts, stem, head, straight-through estimators, fixed-point fake quantisation."""
