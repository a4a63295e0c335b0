"""Whether a checkpoint fits a model, in words: the one message every loader gives for a mismatch."""

__all__ = ["describe_mismatch"]


def describe_mismatch(model, incompatible, advice):
    """The message for a state dict that does not fit `model`.

    Args:
        model: the module loaded into.
        incompatible: what `load_state_dict` returned (or gave its post hooks): missing_keys, unexpected_keys.
        advice: how to find the config the checkpoint needs (model-specific).
    """
    missing, unexpected = incompatible.missing_keys, incompatible.unexpected_keys
    shapes = model.state_dict()
    lines = [f"  missing or of another shape: {k} (this model: {tuple(shapes[k].shape)})" for k in missing[:5]]
    lines += [f"  not in this model: {k}" for k in unexpected[:5]]
    return (
        f"The checkpoint does not fit this {type(model).__name__} model: {len(missing)} of its tensors are missing "
        f"or have other shapes and {len(unexpected)} are unknown to it, e.g.\n" + "\n".join(lines) + "\n" + advice
    )
