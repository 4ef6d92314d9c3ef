"""Moved to ``tf1_reference.slim`` (shared with bench/); this name stays for older imports."""

import sys

from tf1_reference import slim

sys.modules[__name__] = slim
