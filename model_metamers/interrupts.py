"""Ctrl-C that is not lost inside a library.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside
TensorFlow (a ``tf.data`` iterator, an optional import turned into an
ImportError) it can be caught and dropped, and a long run goes on as if Ctrl-C
had not been pressed: seen in the tests, a training run that kept training. The
handler :func:`install` sets remembers the press, and the long loops
(synthesis chunks, training steps, null-distribution batches) call
:func:`check`, which raises it again.
"""

import signal
import threading

_pressed = False


def _handler(signum, frame):
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


def install():
    """Make Ctrl-C raise KeyboardInterrupt and be remembered (main thread only)."""
    global _pressed
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread can set a signal handler (and gets the signal)
    _pressed = False
    signal.signal(signal.SIGINT, _handler)


def check():
    """Raise KeyboardInterrupt if Ctrl-C was pressed since :func:`install` (and swallowed since)."""
    if _pressed:
        raise KeyboardInterrupt
