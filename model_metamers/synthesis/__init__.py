"""Metamer synthesis (SPEC §4): :class:`MetamerSynthesizer` and procedures."""

from model_metamers.synthesis.noise import image_noise, pink_noise
from model_metamers.synthesis.procedures import (PROCEDURES, Feather2019, Feather2023, default_learning_rate,
                                                 make_procedure)
from model_metamers.synthesis.synthesizer import DOMAINS, MetamerSynthesizer, SynthesisError

__all__ = ['DOMAINS', 'PROCEDURES', 'Feather2019', 'Feather2023', 'MetamerSynthesizer',
           'SynthesisError', 'default_learning_rate', 'image_noise', 'make_procedure', 'pink_noise']
