"""BHaRNet model family in PyTorch: graphs, backbone, variants, losses and export."""
