"""Model metamers in TensorFlow 2 (Feather et al., NeurIPS 2019).

Sub-modules, one job each:

* ``model_metamers.networks``: registry of networks (``build``, ``list_networks``).
* ``model_metamers.audio`` / ``model_metamers.images``: loading natural stimuli.
* ``model_metamers.synthesis``: metamer synthesis (``MetamerSynthesizer``, ``generate``).
* ``model_metamers.validation``: Spearman rho, same-class and null-distribution checks.
"""

__version__ = '0.1.0'
