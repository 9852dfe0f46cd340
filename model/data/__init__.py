"""CIFAR-10: loaders of the binary release, the JPEG copy and the bundled sample; in-memory
batches with augmentation; the checked download."""
