"""The TF-Slim ImageNet networks in Keras (VGG-19, Inception-V3, ResNet-101-V2) and their shared builder (``slim_common``)."""
