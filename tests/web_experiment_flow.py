"""What the browser tests of the web experiment share: the stimuli, a participant, a results collector.

``run_participant`` takes the experiment as a participant would, in any browser behind a small page
interface (``open``, ``js``, ``click``, ``keys``, ``screenshot``; see :class:`Page`). The Chromium test
(tests/test_web_experiment.py) wraps selenium in it, the Firefox test (tests/test_web_experiment_firefox.py)
its own WebDriver BiDi client (tests/bidi_firefox.py).
"""

import contextlib
import csv
import http.server
import os
import threading
import time

import numpy as np

from model_metamers import experiment_html, export_experiment, resources
from tests.conftest import REPO

SHIPPED_KWS = os.path.join(REPO, 'checkpoints', 'kws_2d.weights.h5')
LABELS = {'yes': 'yes', 'yes_reversed': 'no'}  # neither is one of the 793 words: the page adds them

# WebDriver key codes (selenium's Keys and BiDi's key actions both use them).
ENTER, ARROW_RIGHT, ARROW_DOWN = '\ue007', '\ue014', '\ue015'


class Page:
    """The interface ``run_participant`` drives a browser through (documentation only).

    ``open(url)`` loads a page and returns when it has loaded; ``js(body, *args)`` runs a function body
    (its ``arguments`` are the JSON-able ``args``) and returns its JSON-able value; ``click(css, index=0)``
    is a real mouse click on the ``index``-th element matching ``css``; ``keys(text)`` presses the keys of
    ``text`` (characters and the codes above) in the focused element; ``screenshot(path)`` saves a PNG;
    ``errors()`` lists the console's errors so far.
    """


def make_kws_results(folder):
    """Result files of kws_2d metamers (conv_1, fc_intermediate) of two 1 s sounds, 4 iterations.

    Returns ``(results folder, labels CSV)``; the shipped weights are used when present.
    """
    import scipy.io.wavfile

    from model_metamers import audio
    from model_metamers.generation import GenerationSettings, generate

    x, sr = audio.read_wav(resources.DEMO_KEYWORD_SOUND)
    paths = [os.path.join(folder, 'yes.wav'), os.path.join(folder, 'yes_reversed.wav')]
    scipy.io.wavfile.write(paths[0], sr, x.astype(np.float32))
    scipy.io.wavfile.write(paths[1], sr, np.ascontiguousarray(x[::-1]).astype(np.float32))
    weights = SHIPPED_KWS if os.path.exists(SHIPPED_KWS) else 'random'
    generate(GenerationSettings(network='kws_2d', weights=weights, inputs=paths, layers=['conv_1', 'fc_intermediate'],
                                iterations=4, log_every=2, output_dir=os.path.join(folder, 'out'), progress=False,
                                figures=False))
    labels = os.path.join(folder, 'labels.csv')
    with open(labels, 'w') as f:
        f.write('input,label\n' + ''.join('%s,%s\n' % kv for kv in LABELS.items()))
    return os.path.join(folder, 'out', 'kws_2d'), labels


def image_results(folder):
    """Result files of a made-up image network with two layers, written by the project's writer.

    Returns {input stem: the natural image's ImageNet class name}.
    """
    from model_metamers import results

    classes = resources.imagenet_classes()
    categories = resources.imagenet_16class_indices()
    natural_class = {'plane': classes[categories['airplane'][0]], 'watch': classes[categories['clock'][0]]}
    rng = np.random.default_rng(0)
    for stem, name in natural_class.items():
        for index, layer in enumerate(['conv1', 'fc7']):
            # the network recognises its fc7 metamers, not its conv1 ones (a dog)
            answer = name if layer == 'fc7' else classes[categories['dog'][0]]
            results.write_part(results.part_path(str(folder), stem, layer),
                               {'network': 'toy_image', 'modality': 'image', 'sample_rate': 0}, layer,
                               {'metamer': rng.uniform(0, 1, (24, 32, 3)), 'natural': rng.uniform(0, 1, (24, 32, 3)),
                                'spearman_layers': np.array([b'conv1', b'fc7']),
                                'spearman_all_layers': np.array([0.9, 0.8])},
                               {'passed': True, 'spearman_matched': 0.9, 'same_class': str(layer == 'fc7'),
                                'natural_class_name': name, 'metamer_class_name': answer, 'layer_index': index})
        results.assemble(str(folder), stem)
    return natural_class


def correct_answers(trials_csv):
    """{stimulus path (metamer or natural): the correct answer} from an export's trials.csv."""
    with open(trials_csv) as f:
        trials = list(csv.DictReader(f))
    answer_of = {}
    for t in trials:
        answer_of[t['stimulus']] = answer_of[t['natural']] = t['correct_answer']
    return trials, answer_of


def word_policy(answer_of, careless):
    """A participant's ``answer_for`` for the word task.

    Not careless: wrong on every third metamer and on the 2nd natural heard after the practice;
    careless: also wrong on every natural (every catch trial fails) and on the headphone check.
    """
    count = {'metamer': 0, 'natural': 0}

    def answer(screen, stimulus, correct):
        if screen == 'headphone':
            return str(int(correct) % 3 + 1) if careless else correct
        right = answer_of[stimulus]
        if screen == 'practice_trial':
            return right
        kind = 'natural' if stimulus.startswith('natural/') else 'metamer'
        count[kind] += 1
        wrong = careless if kind == 'natural' and careless else (
            count[kind] == 2 if kind == 'natural' else count[kind] % 3 == 0)
        return ('about' if right != 'about' else 'above') if wrong else right
    return answer


@contextlib.contextmanager
def collector():
    """A local HTTP server that keeps the bodies POSTed to it: yields ``(url, list of bodies)``."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers['Content-Length'])).decode('utf-8'))
            self.send_response(200)
            self.send_header('Access-Control-Allow-Origin', '*')
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield 'http://127.0.0.1:%d/collect' % server.server_port, received
    finally:
        server.shutdown()
        server.server_close()


def wait(predicate, timeout=20.0, what='the page'):
    """Poll ``predicate`` until it gives something true; returns that."""
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.03)
    raise AssertionError('timed out waiting for %s' % what)


def run_participant(page, url, participant, answer_for, shots):
    """Take the experiment in ``page`` (see :class:`Page`) as a participant would; returns the answers given.

    ``answer_for(screen, stimulus, correct)`` -> the answer to give (``correct`` is known for the
    headphone check only). Sounds are played (the response box opens only after the sound ended), the
    search box is typed into, and words are chosen by keyboard (type, Enter) and by mouse (click in the
    list, Submit) in turn; images by arrow keys and Enter. Every key press goes to the element the page
    focused, so the page's keyboard focus is checked on the way. ``shots``: folder for one screenshot
    per screen type. Returns dicts with screen, stimulus, response, in order.
    """
    page.open(url)
    given = []
    data = page.js('return window.EXPERIMENT_DATA')
    n_words = len(data['choices'])

    def attr(css, name):
        return page.js('var e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);',
                       css, name)

    def enabled(css):
        return page.js('var e = document.querySelector(arguments[0]); return !!e && !e.disabled;', css)

    def focused(name='id'):
        return page.js('return document.activeElement.getAttribute(arguments[0]);', name)

    def mark():  # a flag on the drawn screen: the page replaces every node of #app when it draws the next one
        page.js('document.getElementById("app").firstElementChild.oldScreen = true;')

    def redrawn(what):
        wait(lambda: not page.js('var e = document.getElementById("app").firstElementChild; '
                                 'return !e || !!e.oldScreen;'), what=what)

    while True:
        screen = wait(lambda: attr('#app', 'data-screen'), what='a screen')
        shot = os.path.join(shots, screen + '.png')
        mark()
        if screen == 'welcome':
            assert focused() == 'participant'
            page.keys(participant)
            page.screenshot(shot)
            page.keys(ENTER)  # keyboard start
        elif screen == 'loudness':
            # the Enter that started the experiment must not also press the Play button it focused
            assert enabled('button.primary'), 'the calibration sound started by itself'
            page.click('button.primary')
            wait(lambda: enabled('#continue'), what='the calibration sound to end')
            page.screenshot(shot)
            page.click('#continue')
        elif screen == 'headphone':
            item = data['headphone'][int(page.js('return document.querySelector("h1").textContent').split()[2]) - 1]
            page.click('button.primary')
            wait(lambda: enabled('button[data-answer]'), what='the tones to end')
            choice = answer_for(screen, item['file'], str(item['answer']))
            page.screenshot(shot)
            given.append({'screen': screen, 'stimulus': item['file'], 'response': choice})
            page.click('button[data-answer="%s"]' % choice)
        elif screen in ('practice_intro', 'main_intro', 'feedback'):
            page.screenshot(shot)
            if screen == 'feedback':
                assert focused() == 'continue'
                page.keys(ENTER)
            else:
                page.click('#continue')
        elif screen in ('trial', 'practice_trial') and page.js('return !!document.querySelector("img.stimulus")'):
            stimulus = attr('#app', 'data-stimulus')
            wait(lambda: page.js('return document.querySelector("img.stimulus").naturalWidth'), what='the image')
            response = answer_for(screen, stimulus, None)
            names = page.js('return Array.from(document.querySelectorAll(".grid button"), '
                            'function (b) { return b.getAttribute("data-answer"); });')
            target = names.index(response)
            assert focused('data-answer') == names[0]  # the first category has the focus
            # keyboard only: arrows through the 4-column grid, then Enter
            page.keys(ARROW_DOWN * (target // 4) + ARROW_RIGHT * (target % 4))
            assert focused('data-answer') == response
            page.screenshot(os.path.join(shots, 'image_' + screen + '.png'))
            page.keys(ENTER)
            given.append({'screen': screen, 'stimulus': stimulus, 'response': response})
        elif screen in ('trial', 'practice_trial'):
            stimulus = attr('#app', 'data-stimulus')
            assert not enabled('#search')  # no answering before the sound was heard
            page.click('button.primary')
            wait(lambda: enabled('#search'), what='the stimulus to end')
            assert not enabled('button.primary')  # heard once only
            assert focused() == 'search'
            response = answer_for(screen, stimulus, None)
            page.keys(response[:2])
            shown = page.js('return Array.from(document.querySelectorAll("#words li"), '
                            'function (li) { return li.getAttribute("data-word"); });')
            assert response in shown and len(shown) < n_words  # the typed letters filter the list
            assert all(response[:2] in w.lower() for w in shown)
            if len(given) % 2:  # keyboard: type the word, Enter
                page.keys(response[2:])
                page.screenshot(shot)
                page.keys(ENTER)
            else:  # mouse: click the word in the list, then Submit
                page.click('#words li', shown.index(response))
                assert focused() == 'search' and enabled('#submit')
                page.screenshot(shot)
                page.click('#submit')
            given.append({'screen': screen, 'stimulus': stimulus, 'response': response})
        elif screen == 'end':
            page.screenshot(shot)
            page.click('#download')
            return given
        else:
            raise AssertionError('unknown screen %s' % screen)
        redrawn('the screen after %s' % screen)


def check_results(rows, given, answer_of, participant, seed):
    """The results file's rows hold exactly the answers given, in order, with the page's columns and flags."""
    assert list(rows[0]) == experiment_html.RESULT_COLUMNS
    assert [(r['stimulus'], r['response']) for r in rows] == [(g['stimulus'], g['response']) for g in given]
    assert all(r['correct'] == str(int(r['response'] == r['correct_answer'])) for r in rows)
    assert all(r['correct_answer'] == answer_of[r['stimulus']] for r in rows if r['kind'] != 'headphone')
    assert all(r['participant'] == participant and r['seed'] == str(seed) for r in rows)
    assert all(int(r['rt_ms']) >= 0 for r in rows)
    assert all(r['catch'] == str(int(r['kind'] == 'catch')) and r['practice'] == str(int(r['kind'] == 'practice'))
               for r in rows)


IMAGE_CATEGORY = {'plane': 'airplane', 'watch': 'clock'}  # the two demo images' 16-way categories


def image_answer(screen, stimulus, correct):
    """Right on the natural images, 'bird' on every metamer."""
    stem = os.path.splitext(os.path.basename(stimulus))[0]
    return IMAGE_CATEGORY[stem] if stimulus.startswith('natural/') else 'bird'


def take_image_experiment(page, downloads, tmp_path, participant):
    """Export the toy image results as a web experiment, take it as ``participant`` (seed 5) and
    check what every browser must show: no console error, every screen, the answers given, six
    main trials of 16 choices. Returns ``(given, rows, path)``: the answers, the downloaded CSV's
    rows and its path."""
    image_results(tmp_path / 'toy_image')
    export_experiment.export([str(tmp_path / 'toy_image')], str(tmp_path / 'exp'), seed=0,
                             html={'catch_rate': 0.2, 'practice': 1, 'headphone_checks': 0})
    shots = tmp_path / 'screens'
    shots.mkdir(exist_ok=True)
    given = run_participant(page, 'file://%s/index.html?seed=5' % (tmp_path / 'exp'), participant,
                            image_answer, str(shots))
    name = 'results_%s_5.csv' % participant
    path = wait(lambda: list(downloads.glob(name)), timeout=10, what='the downloaded results')[0]
    assert not page.errors()
    for screen in ('welcome', 'practice_intro', 'image_practice_trial', 'feedback', 'main_intro',
                   'image_trial', 'end'):
        assert (shots / (screen + '.png')).stat().st_size > 5000, screen  # no screen skipped
    rows = wait(lambda: list(csv.DictReader(path.read_text(encoding='utf-8').splitlines())), timeout=5,
                what='the download to be written')
    assert [r['response'] for r in rows] == [g['response'] for g in given]
    assert [r['kind'] for r in rows].count('main') == 6 and all(r['n_choices'] == '16' for r in rows)
    return given, rows, path
