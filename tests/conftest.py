"""Shared test set-up: quiet TensorFlow, paths to the shared reference data."""

import http.server
import os
import sys
import threading

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Layers tested on their own (pooling, conv_0) are checked in full float32 on GPUs too: TensorFlow's
# default TensorFloat-32 on Ampere+ GPUs puts their matrix products ~1e-3 off (tfcochleagram.precision).
tf.config.experimental.enable_tensor_float_32_execution(False)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


REFERENCE_DIR = os.path.join(REPO, 'tests', 'reference')


@pytest.fixture(scope='session')
def reference_word():
    """Arrays computed by the original TF1 tfcochleagram (a copy of shared/reference)."""
    return dict(np.load(os.path.join(REFERENCE_DIR, 'tfcochleagram_original_word.npz')))


# ------------------------------------------------------------ a loopback HTTP server
class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` (206) unless ``server.ignore_range``.

    ``server.cut`` lists byte counts: the n-th response sends only that many
    body bytes (after announcing the full length) and drops the connection.
    """

    protocol_version = 'HTTP/1.1'

    def do_GET(self):  # noqa: N802
        server = self.server
        server.requests.append((self.path, self.headers.get('Range')))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404, 'Not Found')
            return
        start = 0
        rng = self.headers.get('Range')
        if rng and not server.ignore_range:
            start = int(rng.split('=', 1)[1].split('-', 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header('Content-Range', 'bytes */%d' % len(data))
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            self.send_response(206)
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if server.cut:
            body = body[:server.cut.pop(0)]
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 (a thread) serving ``server.files`` {path: bytes}; ``server.url``."""
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    srv.files, srv.requests, srv.cut, srv.ignore_range = {}, [], [], False
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = 'http://127.0.0.1:%d' % srv.server_address[1]
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope='session')
def kws_results(tmp_path_factory):
    """``(results folder, labels CSV)``: kws_2d metamers of two 1 s sounds, shared by the browser tests."""
    from tests.web_experiment_flow import make_kws_results

    return make_kws_results(str(tmp_path_factory.mktemp('kws')))
