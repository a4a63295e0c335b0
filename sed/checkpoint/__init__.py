"""Checkpoints: loading weights that must all fit and crash-safe saving (`loading`), the one-line description of
a checkpoint that does not fit (`fit`), and readers and writers of formats other than PyTorch's (MindSpore's .ckpt,
`mindspore_format`)."""
