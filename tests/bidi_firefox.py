"""A headless Firefox driven over WebDriver BiDi, with no geckodriver: a small client for the tests.

Firefox serves WebDriver BiDi itself (tested with ESR 153) when started with ``--remote-debugging-port``;
Debian ships ``firefox-esr`` but no geckodriver, so the web experiment's Firefox test talks BiDi
directly: a websocket to ``ws://127.0.0.1:<port>/session``, JSON commands, JSON events. Only the
commands the test needs are wrapped. Console messages (``log.entryAdded``) are kept in ``log``.
"""

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time

# Prefs for a quiet, test-friendly profile. Firefox's remote agent adds its own recommended prefs
# (no update checks, no first-run pages) on top of these when it starts.
PREFS = {
    'remote.active-protocols': 1,  # WebDriver BiDi only
    'media.autoplay.default': 0,  # audible playback allowed without a user gesture (the page plays on a
    'media.autoplay.blocking_policy': 0,  # click; the test must not depend on Firefox counting BiDi's as one)
    # A simulated sound output that plays in real time: with no sound device (a server, a container)
    # Firefox fails every playback at once (MEDIA_ERR_DECODE, "OnMediaSinkAudioError").
    'media.cubeb.force_mock_context': True,
    'browser.shell.checkDefaultBrowser': False,
    'browser.startup.homepage_override.mstone': 'ignore',
    'browser.aboutwelcome.enabled': False,
    'datareporting.policy.dataSubmissionEnabled': False,
    'toolkit.telemetry.reportingpolicy.firstRun': False,
    'browser.download.folderList': 2,  # downloads go to browser.download.dir, without asking
    'browser.download.useDownloadDir': True,
    'browser.download.always_ask_before_handling_new_types': False,
    'browser.download.start_downloads_in_tmp_dir': False,
    'browser.download.alwaysOpenPanel': False,
}


def firefox_binary():
    """The path of Firefox (Debian's firefox-esr first), or None."""
    for name in ('firefox-esr', 'firefox'):
        path = shutil.which(name)
        if path:
            return path
    return None


class BiDiError(RuntimeError):
    """A BiDi command answered with an error."""


class Firefox:
    """One headless Firefox with a fresh profile and one BiDi session, on a tab it opens.

    ``downloads``: folder for downloaded files. ``size``: the window's (width, height) in CSS pixels.
    ``prefs``: more (or other) Firefox preferences. Implements the page interface of
    tests/web_experiment_flow.py. Use as a context manager, or call ``close()``.
    """

    def __init__(self, downloads, size=(900, 760), prefs=None, binary=None, timeout=30.0):
        import websocket  # websocket-client (a selenium dependency, listed in the 'test' extra)

        self.profile = tempfile.mkdtemp(prefix='ff-profile-')
        prefs = {**PREFS, 'browser.download.dir': str(downloads), **(prefs or {})}
        with open(os.path.join(self.profile, 'user.js'), 'w') as f:
            f.writelines('user_pref(%s, %s);\n' % (json.dumps(k), json.dumps(v)) for k, v in prefs.items())
        self._stderr = open(os.path.join(self.profile, 'firefox.stderr'), 'w+')  # noqa: SIM115 - closed in close()
        # Port 0: Firefox picks a free port and writes it into the profile (WebDriverBiDiServer.json).
        self.process = subprocess.Popen(
            [binary or firefox_binary(), '--headless', '--no-remote', '--remote-debugging-port=0',
             '--profile', self.profile, '--width=%d' % size[0], '--height=%d' % size[1], 'about:blank'],
            stdout=subprocess.DEVNULL, stderr=self._stderr, env=dict(os.environ, MOZ_CRASHREPORTER_DISABLE='1'))
        self.log = []
        self._next_id = 0
        self._ws = None
        try:
            port = self._port(timeout)
            self._ws = websocket.create_connection('ws://127.0.0.1:%d/session' % port, timeout=timeout,
                                                   suppress_origin=True)
            self.command('session.new', {'capabilities': {'alwaysMatch': {'acceptInsecureCerts': True}}})
            self.command('session.subscribe', {'events': ['log.entryAdded']})
            first = self.command('browsingContext.getTree', {'maxDepth': 0})['contexts'][0]['context']
            # A tab opened over BiDi has the focus; the headless start-up tab has not (document.hasFocus()
            # is false there, and Enter or Space on a focused button does not press it).
            self.context = self.command('browsingContext.create', {'type': 'tab'})['context']
            self.command('browsingContext.close', {'context': first})
        except Exception:
            self.close()
            raise

    def _port(self, timeout):
        server_file = os.path.join(self.profile, 'WebDriverBiDiServer.json')
        end = time.time() + timeout
        while time.time() < end:
            if self.process.poll() is not None:
                raise RuntimeError('firefox exited with status %s: %s' % (self.process.returncode, self.stderr()))
            try:
                with open(server_file) as f:
                    return int(json.load(f)['ws_port'])
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise RuntimeError('firefox did not start WebDriver BiDi within %.0f s: %s' % (timeout, self.stderr()))

    def stderr(self):
        """What Firefox wrote to stderr so far (for error messages)."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-2000:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """End the session, stop Firefox and remove its profile."""
        if self._ws is not None:
            with contextlib.suppress(Exception):  # Firefox may be gone already: it is stopped below anyway
                self.command('browser.close', {})
            self._ws.close()
            self._ws = None
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- the protocol ---------------------------------------------------------------------------------

    def command(self, method, params):
        """Send one command; returns its result (events that arrive meanwhile are handled)."""
        self._next_id += 1
        sent = self._next_id
        self._ws.send(json.dumps({'id': sent, 'method': method, 'params': params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get('type') == 'event':
                if message['method'] == 'log.entryAdded':
                    self.log.append(message['params'])
                continue
            if message.get('id') != sent:
                continue
            if message.get('type') == 'error':
                raise BiDiError('%s: %s: %s' % (method, message.get('error'), message.get('message')))
            return message['result']

    def open(self, url):
        """Load ``url``; returns when the page has loaded."""
        self.command('browsingContext.navigate', {'context': self.context, 'url': url, 'wait': 'complete'})

    def _call(self, function, args, await_promise=False):
        reply = self.command('script.callFunction', {
            'functionDeclaration': function, 'arguments': args, 'awaitPromise': await_promise,
            'target': {'context': self.context}, 'resultOwnership': 'none',
            'serializationOptions': {'maxDomDepth': 0}})
        if reply['type'] == 'exception':
            details = reply['exceptionDetails']
            raise BiDiError('script error: %s' % details.get('text'))
        return reply['result']

    def js(self, body, *args):
        """Run ``body`` (a function body; ``arguments`` holds the JSON-able ``args``); returns its value.

        The value travels as JSON text, so it must be JSON-serialisable (DOM nodes are not).
        """
        function = ('function (args) { return JSON.stringify((function () { %s }).apply(null, JSON.parse(args))); }'
                    % body)
        result = self._call(function, [{'type': 'string', 'value': json.dumps(list(args))}])
        return None if result.get('type') == 'undefined' else json.loads(result['value'])

    def element(self, css, index=0):
        """A shared reference to the ``index``-th element matching ``css`` (for clicks)."""
        result = self._call('function (css, i) { return document.querySelectorAll(css)[i] || null; }',
                            [{'type': 'string', 'value': css}, {'type': 'number', 'value': index}])
        if result.get('type') != 'node':
            raise BiDiError('no element %s[%d] on the page' % (css, index))
        return {'sharedId': result['sharedId']}

    # --- input: real mouse and key events, through the browser's input pipeline ---------------------------

    def click(self, css, index=0):
        """A left click in the middle of the element (scrolled into view first)."""
        self.js('document.querySelectorAll(arguments[0])[arguments[1]].scrollIntoView({block: "nearest"});',
                css, index)
        origin = {'type': 'element', 'element': self.element(css, index)}
        self.command('input.performActions', {'context': self.context, 'actions': [{
            'type': 'pointer', 'id': 'mouse', 'parameters': {'pointerType': 'mouse'},
            'actions': [{'type': 'pointerMove', 'x': 0, 'y': 0, 'origin': origin},
                        {'type': 'pointerDown', 'button': 0}, {'type': 'pointerUp', 'button': 0}]}]})

    def keys(self, text):
        """Press and release each key of ``text`` in turn, in the focused element (characters, or
        WebDriver key codes such as '\\ue007' for Enter)."""
        actions = []
        for value in text:
            actions += [{'type': 'keyDown', 'value': value}, {'type': 'keyUp', 'value': value}]
        self.command('input.performActions', {'context': self.context, 'actions': [
            {'type': 'key', 'id': 'keyboard', 'actions': actions}]})

    def screenshot(self, path):
        """A PNG of the viewport."""
        data = self.command('browsingContext.captureScreenshot', {'context': self.context})['data']
        with open(path, 'wb') as f:
            f.write(base64.b64decode(data))

    def errors(self):
        """The console's error entries so far (messages, uncaught exceptions, failed loads)."""
        return [e for e in self.log if e.get('level') == 'error']
