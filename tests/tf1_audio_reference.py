"""Moved to ``tf1_reference.audio`` (shared with bench/); this name stays for older imports."""

import sys

from tf1_reference import audio

sys.modules[__name__] = audio
