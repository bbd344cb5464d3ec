"""Models: backbones (CNN and transformer), the checkpoint card and weight I/O, nnssl interop."""
