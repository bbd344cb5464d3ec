"""Exchange weights with other frameworks (nnssl / nnU-Net)."""
