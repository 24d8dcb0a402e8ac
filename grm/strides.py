"""The transforms' down-sampling factors: a leaf module, so that the coder and the peers
need not import the float model for two integers."""

STRIDE = 64  # g_a (16) × h_a (4): inputs are padded to a multiple of this
Y_STRIDE = 16  # pixels per latent position along each axis (g_a / g_s)
