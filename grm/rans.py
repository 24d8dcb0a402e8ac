"""compressai's rANS coder (used for z), made safe for hostile input."""


def padded_stream(data: bytes, n_symbols: int) -> bytes:
    """The stream followed by enough zero bytes that compressai's C++ rANS decoder,
    which does not bounds-check, stays inside the buffer however damaged the input: it
    reads at most one 32-bit word per symbol (and per bypass chunk) past the end. On a
    valid stream the padding is never read."""
    return bytes(data) + bytes(8 * n_symbols + 64)
