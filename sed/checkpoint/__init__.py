"""Readers and writers of checkpoint formats other than PyTorch's (MindSpore's .ckpt)."""
