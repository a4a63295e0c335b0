"""The chunks inference works in: slices of rows, classes or locations, so that memory stays bounded."""


def chunk_slices(n, size):
    """Slices covering range(n) in steps of `size` (the last one may be shorter)."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]
