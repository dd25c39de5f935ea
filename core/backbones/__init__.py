"""Image backbones in plain torch (no torchvision): one module per network, e.g. ``resnet.py``."""
