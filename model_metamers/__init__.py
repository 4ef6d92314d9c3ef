"""Model metamers in TensorFlow 2 (Feather et al., NeurIPS 2019).

Sub-modules, one job each:

* ``model_metamers.networks``: registry of networks (``build``, ``list_networks``).
* ``model_metamers.audio`` / ``model_metamers.images``: loading natural stimuli.
* ``model_metamers.synthesis``: metamer synthesis (``MetamerSynthesizer``).
* ``model_metamers.generation``: generating and saving validated metamers (``generate``).
* ``model_metamers.validation``: Spearman rho, same-class and null-distribution checks.
* ``model_metamers.cli``: the one start-up of the command-line tools.
"""

import os as _os
import sys as _sys

__version__ = '0.1.0'

# ``python -m model_metamers.<tool>`` imports this package (and e.g. ``networks``, which loads
# TensorFlow) before the tool's own start-up runs (model_metamers.cli.start_up). While runpy
# imports those parents, sys.argv[0] is still '-m': only then are TensorFlow's C++ start-up
# lines quieted this early (set TF_CPP_MIN_LOG_LEVEL=0 to see them). Imports as a library
# leave the environment alone.
if _sys.argv[:1] == ['-m']:
    _os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
