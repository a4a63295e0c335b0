"""Checkpoints: reading files safely (`safe_load`: no file runs code when read; `errors`: what cannot be used),
loading weights that must all fit and crash-safe saving (`loading`), the one-line description of a checkpoint that
does not fit (`fit`), and readers and writers of formats other than PyTorch's (MindSpore's .ckpt,
`mindspore_format`)."""
