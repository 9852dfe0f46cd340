"""Training and evaluation: Adam + cosine schedule, resumable atomic checkpoints, the one
checkpoint reader, top-1 / top-5, progress lines."""
