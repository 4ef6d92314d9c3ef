"""The web experiment in a real headless Firefox (Debian's firefox-esr), driven over WebDriver BiDi.

Debian has no geckodriver, so tests/bidi_firefox.py talks BiDi to Firefox itself. The participant is the
Chromium test's (tests/web_experiment_flow.py): the sounds are played (Firefox's simulated sound output,
in real time), the search box is typed into with real key presses, every trial is answered (some wrongly
on purpose), the results are POSTed to a local collector and downloaded, and both must hold exactly the
answers given. The console must stay free of errors. Screenshots land in the test's tmp dir (``screens/``).
"""

import csv
import time

import pytest

from model_metamers import experiment_html, export_experiment
from tests import bidi_firefox
from tests.web_experiment_flow import (ENTER, LABELS, check_results, collector, correct_answers,
                                       run_participant, take_image_experiment, wait, word_policy)

pytest.importorskip('websocket', reason="websocket-client is not installed (pip install -e '.[test]')")

SCREENS = ('welcome', 'loudness', 'headphone', 'practice_intro', 'practice_trial', 'feedback', 'main_intro',
           'trial', 'end')


# A mark, not a skip in a fixture: it is decided before the (session-wide) kws_2d metamers are made.
pytestmark = pytest.mark.skipif(not bidi_firefox.firefox_binary(),
                                reason='firefox-esr is not installed (make test installs it with apt-get; '
                                       'by hand: sudo apt-get install firefox-esr)')


@pytest.fixture(scope='module')
def firefox(tmp_path_factory):
    """``(page, download folder)``: one headless Firefox for the module's tests."""
    downloads = tmp_path_factory.mktemp('firefox_downloads')
    with bidi_firefox.Firefox(downloads) as page:
        yield page, downloads


def _text(page):
    return page.js('return document.getElementById("app").textContent')


def test_word_experiment_in_firefox(firefox, kws_results, tmp_path):
    page, downloads = firefox
    results_dir = kws_results[0]
    shots = tmp_path / 'screens'
    shots.mkdir()
    with collector() as (post_url, received):
        export_experiment.export([results_dir], str(tmp_path / 'exp'), labels=dict(LABELS), seed=3,
                                 html={'catch_rate': 0.25, 'practice': 1, 'headphone_checks': 1,
                                       'post_url': post_url})
        trials, answer_of = correct_answers(tmp_path / 'exp' / 'trials.csv')
        given = run_participant(page, 'file://%s/index.html?seed=21' % (tmp_path / 'exp'), 'F1',
                                word_policy(answer_of, False), str(shots))
        wait(lambda: 'were sent' in _text(page), timeout=10, what='the POST to be confirmed')
        downloaded = wait(lambda: list(downloads.glob('results_F1_21.csv')), timeout=10,
                          what='the downloaded results')[0]
    assert page.errors() == []
    assert 'could not be played' not in _text(page)

    # The POSTed and the downloaded file are the same, and hold exactly the answers given.
    assert len(received) == 1
    assert wait(lambda: downloaded.read_bytes(), timeout=5, what='the download to be written') \
        == received[0].encode('utf-8')
    with open(downloaded, newline='') as f:
        rows = list(csv.DictReader(f))
    check_results(rows, given, answer_of, 'F1', 21)
    kinds = [r['kind'] for r in rows]
    assert kinds.count('headphone') == 1 and kinds.count('practice') == 1
    assert kinds.count('main') == len(trials) + 2  # each metamer, and each natural once
    assert kinds.count('catch') == round(0.25 * kinds.count('main'))
    wrong = [r for r in rows if r['kind'] in ('main', 'catch') and r['correct'] == '0']
    assert wrong and all(r['response'] in ('about', 'above') for r in wrong)  # the wrong answers given on purpose
    n_words = len(experiment_html.word_choices()) + 2  # and 'yes', 'no' (LABELS)
    assert all(int(r['n_choices']) == n_words for r in rows if r['kind'] != 'headphone')
    for screen in SCREENS:
        with open(shots / (screen + '.png'), 'rb') as f:
            png = f.read()
        assert png.startswith(b'\x89PNG') and len(png) > 5000, screen


def test_image_experiment_in_firefox(firefox, tmp_path):
    page, downloads = firefox
    given, rows, path = take_image_experiment(page, downloads, tmp_path, 'FI')
    assert all(r['correct'] == ('1' if r['stimulus'].startswith('natural/') else '0') for r in rows)
    assert [r['kind'] for r in rows].count('main') == 6 and all(r['n_choices'] == '16' for r in rows)


def test_firefox_without_sound_output_keeps_the_answer_closed(kws_results, tmp_path):
    """With no sound device Firefox fails the playback and then fires 'ended': the page must not take that
    for a sound heard. (The force_null_context pref makes every machine one without a sound device.)"""
    results_dir = kws_results[0]
    export_experiment.export([results_dir], str(tmp_path / 'exp'), labels=dict(LABELS), seed=3,
                             html={'catch_rate': 0.25, 'practice': 0, 'headphone_checks': 0})
    prefs = {'media.cubeb.force_mock_context': False, 'media.cubeb.force_null_context': True}
    with bidi_firefox.Firefox(tmp_path, prefs=prefs) as page:
        page.open('file://%s/index.html' % (tmp_path / 'exp'))
        wait(lambda: page.js('return document.activeElement.id') == 'participant', what='the welcome screen')
        page.keys('N1' + ENTER)
        page.click('button.primary')  # play the calibration sound
        wait(lambda: 'could not be played' in _text(page), what='the note on the failed playback')
        time.sleep(0.5)  # time for the 'ended' that follows the error
        assert page.js('return document.getElementById("continue").disabled') is True
        assert page.js('return document.querySelector("button.primary").disabled') is False  # may try again
        assert page.errors() == []
