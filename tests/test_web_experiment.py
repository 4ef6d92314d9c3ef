"""The web experiment in a real headless Chromium, and the human report on what the participants gave.

The metamers come from the shipped kws_2d network (a few iterations; the ``kws_results`` fixture of
tests/conftest.py). Two participants take the audio experiment through selenium
(tests/web_experiment_flow.py has the participant): P1 downloads the results file, P2's page POSTs it
to a local collector; P2 answers every catch trial wrongly and must be excluded. The report's numbers
are checked against the answers the test gave. Screenshots of every screen type land in the test's
tmp dir (``screens/``). tests/test_web_experiment_firefox.py takes the same experiment in Firefox.
"""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from model_metamers import experiment_html, export_experiment, human_results
from tests.conftest import REPO
from tests.web_experiment_flow import (LABELS, check_results, collector, correct_answers, image_answer,
                                       run_participant, take_image_experiment, wait, word_policy)


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    """``(page, download folder)``: one headless Chromium for the module's tests."""
    downloads = tmp_path_factory.mktemp('downloads')
    driver = _browser_or_skip(downloads)
    yield SeleniumPage(driver), downloads
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


class SeleniumPage:
    """The page interface of tests/web_experiment_flow.py over a selenium driver."""

    def __init__(self, driver):
        self.driver = driver

    def open(self, url):
        self.driver.get(url)

    def js(self, body, *args):
        return self.driver.execute_script(body, *args)

    def click(self, css, index=0):
        from selenium.webdriver.common.by import By

        element = self.driver.find_elements(By.CSS_SELECTOR, css)[index]
        self.driver.execute_script('arguments[0].scrollIntoView({block: "nearest"})', element)
        element.click()

    def keys(self, text):
        self.driver.switch_to.active_element.send_keys(text)

    def screenshot(self, path):
        self.driver.save_screenshot(path)

    def errors(self):
        return [e for e in self.driver.get_log('browser') if e['level'] == 'SEVERE']


def test_participants_in_chromium_and_the_human_report(browser, kws_results, tmp_path):
    results_dir, labels_csv = kws_results
    page, downloads = browser
    shots = tmp_path / 'screens'
    (shots / 'p2').mkdir(parents=True)
    # P1's experiment through the command line; P2's with the address of a local results collector.
    run = subprocess.run([sys.executable, '-m', 'model_metamers.export_experiment', '--results_dir=' + results_dir,
                          '--output_dir=%s' % (tmp_path / 'exp'), '--labels=' + labels_csv, '--seed=3', '--html',
                          '--catch_rate=0.25', '--practice=1', '--headphone_checks=1'],
                         capture_output=True, text=True, cwd=REPO, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'web experiment: ' in run.stdout
    trials, answer_of = correct_answers(tmp_path / 'exp' / 'trials.csv')
    url = 'file://%s/index.html?seed=%d'
    with collector() as (post_url, received):
        export_experiment.export([results_dir], str(tmp_path / 'exp_post'), labels=dict(LABELS), seed=3,
                                 html=dict(catch_rate=0.25, practice=0, headphone_checks=0,  # quicker
                                           post_url=post_url))
        p1 = run_participant(page, url % (tmp_path / 'exp', 11), 'P1', word_policy(answer_of, False), str(shots))
        csv_p1 = wait(lambda: list(downloads.glob('results_P1_11.csv')), timeout=10,
                      what='the downloaded results')[0]
        assert not page.errors()
        run_participant(page, url % (tmp_path / 'exp_post', 12), 'P2', word_policy(answer_of, True), str(shots / 'p2'))
        wait(lambda: 'were sent' in page.js('return document.getElementById("app").textContent'), timeout=10,
             what='the POST to be confirmed')
        assert not page.errors()
    assert len(received) == 1
    human = tmp_path / 'human'
    human.mkdir()
    shutil.copy(str(csv_p1), str(human / 'P1.csv'))
    (human / 'P2.csv').write_text(received[0], encoding='utf-8')

    for screen in ('welcome', 'loudness', 'headphone', 'practice_intro', 'practice_trial', 'feedback',
                   'main_intro', 'trial', 'end'):
        assert (shots / (screen + '.png')).stat().st_size > 5000, screen

    # The results file holds exactly the answers given, in order, with the page's flags.
    with open(csv_p1, newline='') as f:
        rows = list(csv.DictReader(f))
    check_results(rows, p1, answer_of, 'P1', 11)
    main = [r for r in rows if r['kind'] == 'main']
    catch = [r for r in rows if r['kind'] == 'catch']
    assert sorted(r['stimulus'] for r in main) == sorted([t['stimulus'] for t in trials] +
                                                         ['natural/yes.wav', 'natural/yes_reversed.wav'])
    assert len(catch) == round(0.25 * len(main)) and all(r['catch'] == '1' for r in catch)
    assert [r['practice'] for r in rows if r['kind'] == 'practice'] == ['1']
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


def test_image_experiment_by_keyboard(browser, tmp_path):
    page, downloads = browser
    given, rows, path = take_image_experiment(page, downloads, tmp_path, 'I1')
    assert {r['correct_answer'] for r in rows} == {'airplane', 'clock'}  # ImageNet classes -> 16 categories
    (tmp_path / 'human').mkdir()
    shutil.copy(str(path), str(tmp_path / 'human'))
    tables = human_results.summarise(human_results.read_results(str(tmp_path / 'human')), n_boot=10)
    table = {r['layer']: r for r in tables['toy_image']}
    assert [table[k]['human_prop_correct'] for k in ('natural', 'conv1', 'fc7')] == [1.0, 0.0, 0.0]
    assert [table[k]['network_prop_correct'] for k in ('conv1', 'fc7')] == [0.0, 1.0]
    assert table['natural']['chance'] == 1 / 16
    # The recorded seed gives the participant's order back.
    run_participant(page, 'file://%s/index.html?seed=5' % (tmp_path / 'exp'), 'I2', image_answer,
                    str(tmp_path / 'screens'))
    again = wait(lambda: list(downloads.glob('results_I2_5.csv')), timeout=10, what='the downloaded results')[0]
    with open(again, newline='') as f:
        assert [r['stimulus'] for r in csv.DictReader(f)] == [r['stimulus'] for r in rows]
