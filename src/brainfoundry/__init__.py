"""brainfoundry: pretrain, adapt, evaluate and deploy foundation models for brain MRI."""

__version__ = "0.1.0"
