"""The public speech models of the paper's section 4.2 (VGGish, DeepSpeech 0.5.1 / 0.4.1), their front ends and shared spectral helpers."""
