"""The web experiment in a real headless Chromium, and the human report on what the participants gave.

The metamers come from the shipped kws_2d network (a few iterations). Two participants take the audio
experiment through selenium: P1 downloads the results file, P2's page POSTs it to a local collector;
P2 answers every catch trial wrongly and must be excluded. The report's numbers are checked against the
answers the test gave. Screenshots of every screen type land in the test's tmp dir (``screens/``).
"""

import csv
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.io.wavfile

from model_metamers import experiment_html, export_experiment, human_results, resources
from tests.conftest import REPO

SHIPPED_KWS = os.path.join(REPO, 'checkpoints', 'kws_2d.weights.h5')
LABELS = {'yes': 'yes', 'yes_reversed': 'no'}  # neither is one of the 793 words: the page adds them


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    """``(driver, download folder)``: one headless Chromium for the module's tests."""
    downloads = tmp_path_factory.mktemp('downloads')
    driver = _browser_or_skip(downloads)
    yield driver, downloads
    driver.quit()


def _browser_or_skip(download_dir):
    """A headless Chromium driven by chromedriver, or a skip that says what is missing."""
    webdriver = pytest.importorskip('selenium.webdriver', reason='selenium is not installed '
                                    "(pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    driver = shutil.which('chromedriver')
    if not binary or not driver:
        pytest.skip('chromium and chromium-driver are not installed (make test installs them with apt-get; '
                    'by hand: sudo apt-get install chromium chromium-driver)')
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--mute-audio',
                '--window-size=900,760', '--allow-file-access-from-files'):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    options.add_experimental_option('prefs', {'download.default_directory': str(download_dir),
                                              'download.prompt_for_download': False})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope='module')
def kws_results(tmp_path_factory):
    """Result files of kws_2d metamers (conv_1, fc_intermediate) of two 1 s sounds, 4 iterations."""
    from model_metamers import audio
    from model_metamers.generation import GenerationSettings, generate

    folder = tmp_path_factory.mktemp('kws')
    x, sr = audio.read_wav(resources.DEMO_KEYWORD_SOUND)
    paths = [str(folder / 'yes.wav'), str(folder / 'yes_reversed.wav')]
    scipy.io.wavfile.write(paths[0], sr, x.astype(np.float32))
    scipy.io.wavfile.write(paths[1], sr, np.ascontiguousarray(x[::-1]).astype(np.float32))
    weights = SHIPPED_KWS if os.path.exists(SHIPPED_KWS) else 'random'
    generate(GenerationSettings(network='kws_2d', weights=weights, inputs=paths, layers=['conv_1', 'fc_intermediate'],
                                iterations=4, log_every=2, output_dir=str(folder / 'out'), progress=False,
                                figures=False))
    labels = folder / 'labels.csv'
    labels.write_text('input,label\n' + ''.join('%s,%s\n' % kv for kv in LABELS.items()))
    return str(folder / 'out' / 'kws_2d'), str(labels)


class _Collector(http.server.BaseHTTPRequestHandler):
    """Takes the page's POST (the results CSV) and keeps its body."""
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length'])).decode('utf-8')
        _Collector.received.append(body)
        self.send_response(200)
        self.send_header('Access-Control-Allow-Origin', '*')
        self.end_headers()

    def log_message(self, *args):
        pass


def _wait(predicate, timeout=20.0, what='the page'):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.03)
    raise AssertionError('timed out waiting for %s' % what)


def _take(driver, by_id_or_css):
    from selenium.webdriver.common.by import By
    if by_id_or_css.startswith('#'):
        return driver.find_element(By.ID, by_id_or_css[1:])
    return driver.find_element(By.CSS_SELECTOR, by_id_or_css)


def run_participant(driver, url, participant, answer_for, shots):
    """Take the experiment in ``driver`` as a participant would; returns the answers given, in order.

    ``answer_for(screen, stimulus, correct)`` -> the answer to give (``correct`` is known for the
    headphone check only). Sounds are played (the response box opens only after the sound ended), the
    search box is typed into, and words are chosen by keyboard (type, Enter) and by mouse (click in the
    list, Submit) in turn. ``shots``: folder for one screenshot per screen type.
    Returns dicts with screen, stimulus, response.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    given = []
    data = driver.execute_script('return window.EXPERIMENT_DATA')
    n_words = len(data['choices'])
    while True:
        screen = _wait(lambda: _take(driver, '#app').get_attribute('data-screen'), what='a screen')
        shot = os.path.join(shots, screen + '.png')
        if screen == 'welcome':
            _take(driver, '#participant').send_keys(participant)
            driver.save_screenshot(shot)
            _take(driver, '#participant').send_keys(Keys.ENTER)  # keyboard start
        elif screen == 'loudness':
            _take(driver, 'button.primary').click()
            _wait(lambda: _take(driver, '#continue').is_enabled(), what='the calibration sound to end')
            driver.save_screenshot(shot)
            _take(driver, '#continue').click()
        elif screen == 'headphone':
            title = _take(driver, 'h1').text
            item = data['headphone'][int(title.split()[2]) - 1]
            _take(driver, 'button.primary').click()
            buttons = driver.find_elements(By.CSS_SELECTOR, 'button[data-answer]')
            _wait(buttons[0].is_enabled, what='the tones to end')
            choice = answer_for(screen, item['file'], str(item['answer']))
            driver.save_screenshot(shot)
            given.append({'screen': screen, 'stimulus': item['file'], 'response': choice})
            next(b for b in buttons if b.get_attribute('data-answer') == choice).click()
            _wait(lambda title=title: _take(driver, '#app').get_attribute('data-screen') != 'headphone'
                  or _take(driver, 'h1').text != title, what='the next headphone check')
        elif screen in ('practice_intro', 'main_intro', 'feedback'):
            driver.save_screenshot(shot)
            button = _take(driver, '#continue')
            if screen == 'feedback':
                button.send_keys(Keys.ENTER)
            else:
                button.click()
            _wait(lambda screen=screen: _take(driver, '#app').get_attribute('data-screen') != screen,
                  what='the next screen')
        elif screen in ('trial', 'practice_trial') and driver.find_elements(By.CSS_SELECTOR, 'img.stimulus'):
            stimulus = _take(driver, '#app').get_attribute('data-stimulus')
            _wait(lambda: driver.execute_script('return document.querySelector("img.stimulus").naturalWidth'),
                  what='the image')
            response = answer_for(screen, stimulus, None)
            buttons = driver.find_elements(By.CSS_SELECTOR, '.grid button')
            names = [b.get_attribute('data-answer') for b in buttons]
            target = names.index(response)
            focused = lambda: driver.switch_to.active_element.get_attribute('data-answer')
            assert focused() == names[0]  # the first category has the focus
            active = driver.switch_to.active_element
            for _ in range(target // 4):  # keyboard only: arrows through the 4-column grid, then Enter
                active.send_keys(Keys.ARROW_DOWN)
                active = driver.switch_to.active_element
            for _ in range(target % 4):
                active.send_keys(Keys.ARROW_RIGHT)
                active = driver.switch_to.active_element
            assert focused() == response
            driver.save_screenshot(os.path.join(shots, 'image_' + screen + '.png'))
            active.send_keys(Keys.ENTER)
            given.append({'screen': screen, 'stimulus': stimulus, 'response': response})
        elif screen in ('trial', 'practice_trial'):
            stimulus = _take(driver, '#app').get_attribute('data-stimulus')
            play, box = _take(driver, 'button.primary'), _take(driver, '#search')
            assert not box.is_enabled()  # no answering before the sound was heard
            play.click()
            _wait(box.is_enabled, what='the stimulus to end')
            assert not play.is_enabled()  # heard once only
            response = answer_for(screen, stimulus, None)
            box.send_keys(response[:2])
            items = driver.find_elements(By.CSS_SELECTOR, '#words li')
            shown = [li.get_attribute('data-word') for li in items]
            assert response in shown and len(shown) < n_words  # the typed letters filter the list
            assert all(response[:2] in w.lower() for w in shown)
            if len(given) % 2:  # keyboard: type the word, Enter
                box.send_keys(response[2:])
                driver.save_screenshot(shot)
                box.send_keys(Keys.ENTER)
            else:  # mouse: click the word in the list, then Submit
                item = items[shown.index(response)]
                driver.execute_script('arguments[0].scrollIntoView({block: "nearest"})', item)
                item.click()
                driver.save_screenshot(shot)
                _take(driver, '#submit').click()
            given.append({'screen': screen, 'stimulus': stimulus, 'response': response})
            # the page draws the next screen in the key/click handler, before webdriver returns
        elif screen == 'end':
            driver.save_screenshot(shot)
            _take(driver, '#download').click()
            return given
        else:
            raise AssertionError('unknown screen %s' % screen)


def _severe(driver):
    return [e for e in driver.get_log('browser') if e['level'] == 'SEVERE']


def test_participants_in_chromium_and_the_human_report(browser, kws_results, tmp_path):
    results_dir, labels_csv = kws_results
    driver, downloads = browser
    shots = tmp_path / 'screens'
    (shots / 'p2').mkdir(parents=True)
    # P1's experiment through the command line; P2's with the address of a local results collector.
    run = subprocess.run([sys.executable, '-m', 'model_metamers.export_experiment', '--results_dir=' + results_dir,
                          '--output_dir=%s' % (tmp_path / 'exp'), '--labels=' + labels_csv, '--seed=3', '--html',
                          '--catch_rate=0.25', '--practice=1', '--headphone_checks=1'],
                         capture_output=True, text=True, cwd=REPO, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'web experiment: ' in run.stdout
    server = http.server.HTTPServer(('127.0.0.1', 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    export_experiment.export([results_dir], str(tmp_path / 'exp_post'), labels=dict(LABELS), seed=3,
                             html=dict(catch_rate=0.25, practice=0, headphone_checks=0,  # quicker
                                       post_url='http://127.0.0.1:%d/collect' % server.server_port))
    with open(tmp_path / 'exp' / 'trials.csv') as f:
        trials = list(csv.DictReader(f))
    answer_of = {}
    for t in trials:
        answer_of[t['stimulus']] = answer_of[t['natural']] = t['correct_answer']

    def policy(careless):
        """P1 (careless=False) is wrong on every third metamer and on the 2nd natural it hears after
        the practice; P2 (careless=True) is also wrong on every natural: every catch trial fails."""
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

    try:
        url = 'file://%s/index.html?seed=%d'
        p1 = run_participant(driver, url % (tmp_path / 'exp', 11), 'P1', policy(False), str(shots))
        csv_p1 = _wait(lambda: list(downloads.glob('results_P1_11.csv')), timeout=10,
                       what='the downloaded results')[0]
        assert not _severe(driver)
        run_participant(driver, url % (tmp_path / 'exp_post', 12), 'P2', policy(True), str(shots / 'p2'))
        _wait(lambda: 'were sent' in _take(driver, '#app').text, timeout=10, what='the POST to be confirmed')
        assert not _severe(driver)
    finally:
        server.shutdown()
    assert len(_Collector.received) == 1
    human = tmp_path / 'human'
    human.mkdir()
    shutil.copy(str(csv_p1), str(human / 'P1.csv'))
    (human / 'P2.csv').write_text(_Collector.received[0], encoding='utf-8')

    for screen in ('welcome', 'loudness', 'headphone', 'practice_intro', 'practice_trial', 'feedback',
                   'main_intro', 'trial', 'end'):
        assert (shots / (screen + '.png')).stat().st_size > 5000, screen

    # The results file holds exactly the answers given, in order, with the page's flags.
    with open(csv_p1, newline='') as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == experiment_html.RESULT_COLUMNS
    assert [(r['stimulus'], r['response']) for r in rows] == [(g['stimulus'], g['response']) for g in p1]
    assert all(r['correct'] == str(int(r['response'] == r['correct_answer'])) for r in rows)
    assert all(r['correct_answer'] == answer_of[r['stimulus']] for r in rows if r['kind'] != 'headphone')
    assert all(r['participant'] == 'P1' and r['seed'] == '11' for r in rows)
    main = [r for r in rows if r['kind'] == 'main']
    catch = [r for r in rows if r['kind'] == 'catch']
    assert sorted(r['stimulus'] for r in main) == sorted([t['stimulus'] for t in trials] +
                                                         ['natural/yes.wav', 'natural/yes_reversed.wav'])
    assert len(catch) == round(0.25 * len(main)) and all(r['catch'] == '1' for r in catch)
    assert [r['practice'] for r in rows if r['kind'] == 'practice'] == ['1']
    assert all(int(r['rt_ms']) >= 0 for r in rows)
    with open(human / 'P2.csv', newline='') as f:
        rows2 = list(csv.DictReader(f))
    assert [r['stimulus'] for r in rows2] != [r['stimulus'] for r in rows]  # another seed, another order

    # The report: P2 (every catch trial wrong) is excluded; the numbers are P1's answers.
    out = tmp_path / 'report'
    run = subprocess.run([sys.executable, '-m', 'model_metamers.reports', '--human=%s' % human,
                          '--output_dir=%s' % out, '--n_boot=500'], capture_output=True, text=True, cwd=REPO, check=False,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'participants: 2, excluded 1' in run.stdout and 'P2: catch 0/' in run.stdout
    with open(out / 'kws_2d_human.csv') as f:
        table = {r['layer']: r for r in csv.DictReader(f)}
    assert list(table) == ['natural', 'conv_1', 'fc_intermediate']
    given_main = [g for g, r in zip(p1, rows) if r['kind'] == 'main']
    natural = np.mean([g['response'] == answer_of[g['stimulus']] for g in given_main
                       if g['stimulus'].startswith('natural/')])
    assert 0 < natural < 1 or natural == 1  # the wrong natural may have been a catch trial
    for layer, r in table.items():
        prefix = 'natural/' if layer == 'natural' else 'kws_2d__%s/' % layer
        mine = [g['response'] == answer_of[g['stimulus']] for g in given_main if g['stimulus'].startswith(prefix)]
        assert len(mine) == 2
        assert float(r['human_prop_correct']) == pytest.approx(np.mean(mine)), layer
        assert float(r['human_ci_low']) == float(r['human_ci_high']) == pytest.approx(np.mean(mine))
        assert int(r['n_participants']) == 1
        assert float(r['chance']) == pytest.approx(1 / (len(experiment_html.word_choices()) + 2))
        if layer == 'natural':  # the network's answer for each natural stimulus, from the result files
            net = np.mean([t['network_natural_answer'] == t['correct_answer']
                           for t in {t['input']: t for t in trials}.values()])
            assert float(r['network_prop_correct']) == pytest.approx(net)
        else:
            net = np.mean([t['network_answer'] == t['correct_answer'] for t in trials if t['layer'] == layer])
            assert float(r['network_prop_correct']) == pytest.approx(net)
            assert float(r['mean_diff_vs_natural']) == pytest.approx(np.mean(mine) - natural)
    assert sum(1 - np.mean([g['response'] == answer_of[g['stimulus']] for g in given_main
                            if g['stimulus'].startswith('kws_2d__%s/' % layer)])
               for layer in ('conv_1', 'fc_intermediate')) > 0  # some wrong answers were given on purpose
    for ext in ('png', 'svg'):
        assert (out / ('kws_2d_human.' + ext)).stat().st_size > 5000
    with open(out / 'participants.csv') as f:
        people = {r['participant']: r for r in csv.DictReader(f)}
    assert people['P1']['included'] == 'True' and people['P2']['included'] == 'False'
    assert json.loads((tmp_path / 'exp' / 'export_info.json').read_text())['choices_added'] == ['no', 'yes']


def _image_results(folder):
    """Result files of a made-up image network with two layers, written by the project's writer."""
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


def test_image_experiment_by_keyboard(browser, tmp_path):
    driver, downloads = browser
    _image_results(tmp_path / 'toy_image')
    export_experiment.export([str(tmp_path / 'toy_image')], str(tmp_path / 'exp'), seed=0,
                             html=dict(catch_rate=0.2, practice=1, headphone_checks=0))
    category = {'plane': 'airplane', 'watch': 'clock'}
    shots = tmp_path / 'screens'
    shots.mkdir()

    def answer(screen, stimulus, correct):  # right on naturals, 'bird' on every metamer
        stem = os.path.splitext(os.path.basename(stimulus))[0]
        return category[stem] if stimulus.startswith('natural/') else 'bird'

    given = run_participant(driver, 'file://%s/index.html?seed=5' % (tmp_path / 'exp'), 'I1', answer, str(shots))
    path = _wait(lambda: list(downloads.glob('results_I1_5.csv')), timeout=10, what='the downloaded results')[0]
    assert not _severe(driver)
    assert (shots / 'image_trial.png').stat().st_size > 5000
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['response'] for r in rows] == [g['response'] for g in given]
    assert {r['correct_answer'] for r in rows} == {'airplane', 'clock'}  # ImageNet classes -> 16 categories
    assert [r['kind'] for r in rows].count('main') == 6 and all(r['n_choices'] == '16' for r in rows)
    (tmp_path / 'human').mkdir()
    shutil.copy(str(path), str(tmp_path / 'human'))
    tables = human_results.summarise(human_results.read_results(str(tmp_path / 'human')), n_boot=10)
    table = {r['layer']: r for r in tables['toy_image']}
    assert [table[k]['human_prop_correct'] for k in ('natural', 'conv1', 'fc7')] == [1.0, 0.0, 0.0]
    assert [table[k]['network_prop_correct'] for k in ('conv1', 'fc7')] == [0.0, 1.0]
    assert table['natural']['chance'] == 1 / 16
    # The recorded seed gives the participant's order back.
    run_participant(driver, 'file://%s/index.html?seed=5' % (tmp_path / 'exp'), 'I2', answer, str(shots))
    again = _wait(lambda: list(downloads.glob('results_I2_5.csv')), timeout=10, what='the downloaded results')[0]
    with open(again, newline='') as f:
        assert [r['stimulus'] for r in csv.DictReader(f)] == [r['stimulus'] for r in rows]
