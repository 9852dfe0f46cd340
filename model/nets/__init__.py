"""The two networks (ReActNet-18, Bi-Real-Net-18) built from their geometry, the seed's
variants, the post-popcount operation count, calibrated random networks."""
