"""Reading checkpoints safely (`safe_load`: no file runs code when read; `errors`: what cannot be used) and
readers and writers of checkpoint formats other than PyTorch's (MindSpore's .ckpt)."""
