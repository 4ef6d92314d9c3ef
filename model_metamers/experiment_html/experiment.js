/* Human recognition experiment for model metamers (written by model_metamers.export_experiment --html).
 *
 * Reads window.EXPERIMENT_DATA (experiment_data.js). Flow: welcome -> [audio: loudness, headphone check]
 * -> practice (with feedback) -> main trials with catch trials mixed in -> results (download / POST).
 * The trial order is shuffled per participant from a seed that is written into every result row.
 * URL parameters: participant (or PROLIFIC_PID / workerId), seed.
 */
(function () {
  'use strict';

  var D = window.EXPERIMENT_DATA;
  var app = document.getElementById('app');
  var params = new URLSearchParams(window.location.search);
  var COLUMNS = ['participant', 'seed', 'trial', 'kind', 'condition', 'network', 'layer', 'input', 'stimulus',
                 'response', 'correct_answer', 'correct', 'rt_ms', 'catch', 'practice', 'network_answer',
                 'layer_index', 'n_choices', 'network_natural_answer'];
  var S = { participant: '', seed: 0, plan: [], index: 0, rows: [], counted: 0 };

  // Closing the tab mid-way would lose every answer (they exist only in this page until the end).
  function guard(e) { e.preventDefault(); e.returnValue = ''; }

  // Marsaglia xorshift32: small, seedable, identical in every browser (Math.random is not seedable).
  function makeRandom(seed) {
    var s = (seed >>> 0) || 0x2545f491;
    return function () {
      s ^= s << 13; s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5; s >>>= 0;
      return s / 4294967296;
    };
  }

  function shuffle(list, random) {
    for (var i = list.length - 1; i > 0; i--) {
      var j = Math.floor(random() * (i + 1));
      var t = list[i]; list[i] = list[j]; list[j] = t;
    }
    return list;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'onclick') node.addEventListener('click', attrs[k]);
      else if (k === 'disabled') node.disabled = !!attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function screen(name, children) {
    app.textContent = '';
    app.setAttribute('data-screen', name);
    children.forEach(function (c) { app.appendChild(c); });
  }

  function para(text, cls) { return el('p', { text: text, 'class': cls || '' }); }

  function progressBar() {
    var total = S.plan.filter(function (t) { return t.kind !== 'practice'; }).length;
    var pct = total ? Math.round(100 * S.counted / total) : 0;
    var bar = el('div', { 'class': 'progress', role: 'progressbar', 'aria-valuemin': '0',
                          'aria-valuemax': '100', 'aria-valuenow': String(pct) }, [el('div')]);
    bar.firstChild.style.width = pct + '%';
    return bar;
  }

  // The plan: practice trials (naturals), then the main trials shuffled with one catch trial (a natural
  // stimulus) at a random place in each block of about 1 / catch_rate trials.
  function buildPlan(seed) {
    var random = makeRandom(seed);
    var naturals = shuffle(D.naturals.slice(), random);
    var plan = [];
    var k;
    for (k = 0; k < D.practice; k++) {
      plan.push(Object.assign({ kind: 'practice', condition: 'practice', network: '', layer: '' },
                              naturals[k % naturals.length]));
    }
    var main = shuffle(D.trials.map(function (t) { return Object.assign({ kind: 'main' }, t); }), random);
    var nCatch = Math.round(D.catch_rate * main.length);
    var out = [];
    for (k = 0; k < nCatch; k++) {
      var block = main.slice(Math.floor(k * main.length / nCatch), Math.floor((k + 1) * main.length / nCatch));
      var catchTrial = Object.assign({ kind: 'catch', condition: 'catch', network: '', layer: '' },
                                     naturals[(D.practice + k) % naturals.length]);
      block.splice(Math.floor(random() * (block.length + 1)), 0, catchTrial);
      out = out.concat(block);
    }
    return plan.concat(nCatch ? out : main);
  }

  function record(trial, response, rt) {
    S.rows.push({
      participant: S.participant, seed: S.seed, trial: S.rows.length + 1, kind: trial.kind,
      condition: trial.condition, network: trial.network || '', layer: trial.layer || '',
      input: trial.input || '', stimulus: trial.stimulus, response: response,
      correct_answer: String(trial.correct_answer), correct: response === String(trial.correct_answer) ? 1 : 0,
      rt_ms: Math.round(rt), catch: trial.kind === 'catch' ? 1 : 0, practice: trial.kind === 'practice' ? 1 : 0,
      network_answer: trial.network_answer || '',
      layer_index: trial.layer_index === undefined ? '' : trial.layer_index, n_choices: D.choices.length,
      network_natural_answer: trial.network_natural_answer || ''
    });
  }

  function csvText() {
    function cell(v) {
      var s = String(v);
      return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }
    var lines = [COLUMNS.join(',')];
    S.rows.forEach(function (r) { lines.push(COLUMNS.map(function (c) { return cell(r[c]); }).join(',')); });
    return lines.join('\r\n') + '\r\n';
  }

  // A play button that plays `src` once (or again, when `repeat`); `onEnded` runs after each playback.
  function player(src, label, repeat, onEnded) {
    var audio = new Audio(src);
    var button = el('button', { 'class': 'primary', text: label, type: 'button' });
    var note = para('', 'meta');
    audio.addEventListener('ended', function () {
      // Firefox ends a playback whose sound output failed (no audio device) with 'error' and then
      // 'ended': nothing was heard, so the answer must stay closed.
      if (audio.error) return;
      if (repeat) button.disabled = false;
      onEnded();
    });
    audio.addEventListener('error', function () {
      note.textContent = 'The sound ' + src + ' could not be played; check that your headphones are ' +
                         'connected and press the button again, or tell the experimenter.';
      button.disabled = false;  // not heard, so not used up
    });
    button.addEventListener('click', function () {
      button.disabled = true;
      note.textContent = '';
      if (audio.error) audio.load();  // an element in the error state plays again only after load()
      var started = audio.play();
      if (started && started.catch) {
        started.catch(function () {
          button.disabled = false;
          note.textContent = 'The browser did not play the sound; press the button again.';
        });
      }
    });
    return { button: button, note: note, audio: audio };
  }

  function welcome() {
    var id = el('input', { type: 'text', id: 'participant', autocomplete: 'off',
                           value: params.get('participant') || params.get('PROLIFIC_PID') ||
                                  params.get('workerId') || '' });
    var start = el('button', { 'class': 'primary', id: 'start', text: 'Start', type: 'button' });
    function go() {
      var given = id.value.trim();
      S.participant = given || 'anon-' + Math.floor(Math.random() * 1e9).toString(36);
      S.seed = params.has('seed') ? (parseInt(params.get('seed'), 10) >>> 0) :
        window.crypto.getRandomValues(new Uint32Array(1))[0];
      S.plan = buildPlan(S.seed);
      window.addEventListener('beforeunload', guard);
      if (D.modality === 'audio') loudness(); else practiceIntro();
    }
    start.addEventListener('click', go);
    id.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter') return;
      // go() focuses the next screen's first button; without preventDefault the same Enter's keypress
      // presses that button too (Chromium and Firefox: the calibration sound played unasked, the
      // practice intro was skipped).
      e.preventDefault();
      go();
    });
    var task = D.modality === 'audio' ?
      'You will hear short sounds, each one only once. After each sound, type in the box to find the ' +
      'word you heard, pick it from the list and press Enter. Some sounds are hard to understand: ' +
      'give your best guess.' :
      'You will see images. For each image choose which of ' + D.choices.length + ' categories it shows. ' +
      'Some images are hard to recognise: give your best guess.';
    screen('welcome', [el('h1', { text: D.title }), para(task),
      para('The experiment has ' + S.planLength() + ' trials and a few practice trials first.', 'meta'),
      el('label', { 'for': 'participant', text: 'Participant ID' }), id, el('p', {}, [start])]);
    (id.value ? start : id).focus();
  }

  S.planLength = function () {
    return D.trials.length + Math.round(D.catch_rate * D.trials.length);
  };

  function loudness() {
    var cont = el('button', { id: 'continue', text: 'Continue', type: 'button', disabled: true });
    var p = player(D.calibration, 'Play a sound', true, function () { cont.disabled = false; cont.focus(); });
    cont.addEventListener('click', headphoneCheck.bind(null, 0));
    screen('loudness', [el('h1', { text: 'Set the volume' }),
      para('Please put on headphones. Play the sound and set your volume so that it is clearly audible ' +
           'and comfortable. You may play it as often as you like.'),
      el('p', {}, [p.button, cont]), p.note]);
    p.button.focus();
  }

  // Three tones; the quietest is 6 dB down, one other is in antiphase between the ears (quieter only on
  // loudspeakers), so the task is easy with headphones and hard without them.
  function headphoneCheck(k) {
    if (k >= D.headphone.length) { practiceIntro(); return; }
    var item = D.headphone[k];
    var choices = [1, 2, 3].map(function (n) {
      return el('button', { type: 'button', text: 'Tone ' + n, disabled: true, 'data-answer': String(n) });
    });
    var start = 0;
    var p = player(item.file, 'Play the tones', false, function () {
      start = performance.now();
      choices.forEach(function (b) { b.disabled = false; });
      choices[0].focus();
    });
    choices.forEach(function (b) {
      b.addEventListener('click', function () {
        record({ kind: 'headphone', condition: 'headphone_check', stimulus: item.file,
                 correct_answer: String(item.answer) }, b.getAttribute('data-answer'), performance.now() - start);
        headphoneCheck(k + 1);
      });
    });
    screen('headphone', [el('h1', { text: 'Headphone check ' + (k + 1) + ' of ' + D.headphone.length }),
      para('You will hear three tones. Which one is the quietest?'), el('p', {}, [p.button]),
      el('p', {}, choices), p.note]);
    p.button.focus();
  }

  function practiceIntro() {
    if (!D.practice) { mainIntro(); return; }
    var go = el('button', { 'class': 'primary', id: 'continue', text: 'Start the practice', type: 'button',
                            onclick: function () { trial(); } });
    screen('practice_intro', [el('h1', { text: 'Practice' }),
      para('First ' + D.practice + ' practice trial' + (D.practice > 1 ? 's' : '') +
           '. After each one you will see whether your answer was right.'), el('p', {}, [go])]);
    go.focus();
  }

  function mainIntro() {
    var go = el('button', { 'class': 'primary', id: 'continue', text: 'Start the experiment', type: 'button',
                            onclick: function () { trial(); } });
    screen('main_intro', [el('h1', { text: 'The experiment starts now' }),
      para('There is no feedback from here on. Each stimulus is presented once.'), el('p', {}, [go])]);
    go.focus();
  }

  function next(t, response, rt) {
    record(t, response, rt);
    S.index += 1;
    if (t.kind !== 'practice') S.counted += 1;
    if (t.kind === 'practice') { feedback(t, response); return; }
    if (S.index >= S.plan.length) finish(); else trial();
  }

  function feedback(t, response) {
    var right = response === String(t.correct_answer);
    var go = el('button', { 'class': 'primary', id: 'continue', text: 'Continue', type: 'button',
                            onclick: function () {
                              var more = S.index < S.plan.length && S.plan[S.index].kind === 'practice';
                              if (more) trial(); else mainIntro();
                            } });
    screen('feedback', [el('h1', { text: 'Practice' }),
      para(right ? 'Correct: it was "' + t.correct_answer + '".' :
           'Not quite: it was "' + t.correct_answer + '" (you answered "' + response + '").',
           'message ' + (right ? 'ok' : 'bad')), el('p', {}, [go])]);
    go.focus();
  }

  function trial() {
    var t = S.plan[S.index];
    app.setAttribute('data-stimulus', t.stimulus);  // lets a test (or a screen recording) tell trials apart
    var head = [progressBar(), para(t.kind === 'practice' ? 'Practice trial' :
                                    'Trial ' + (S.counted + 1) + ' of ' + S.planLength(), 'meta')];
    if (D.modality === 'audio') wordTrial(t, head); else imageTrial(t, head);
  }

  // The word task: the sound plays once; then a typed search narrows the list of words.
  function wordTrial(t, head) {
    var box = el('input', { type: 'text', id: 'search', disabled: true, autocomplete: 'off', role: 'combobox',
                            'aria-controls': 'words', 'aria-expanded': 'true',
                            'aria-label': 'Type to find the word you heard' });
    var list = el('ul', { 'class': 'words', id: 'words', role: 'listbox' });
    var count = para('', 'meta');
    var submit = el('button', { 'class': 'primary', id: 'submit', text: 'Submit', type: 'button', disabled: true });
    var shown = [];
    var active = -1;
    var start = 0;

    function chosen() {
      var v = box.value.trim().toLowerCase();
      for (var i = 0; i < D.choices.length; i++) if (D.choices[i].toLowerCase() === v) return D.choices[i];
      return null;
    }
    function setActive(i) {
      if (!shown.length) { active = -1; return; }
      active = Math.max(0, Math.min(shown.length - 1, i));
      Array.prototype.forEach.call(list.children, function (li, j) {
        li.classList.toggle('active', j === active);
        li.setAttribute('aria-selected', j === active ? 'true' : 'false');
      });
      box.setAttribute('aria-activedescendant', 'word-' + active);
      list.children[active].scrollIntoView({ block: 'nearest' });
    }
    function refresh() {
      var q = box.value.trim().toLowerCase();
      var exact = [];
      var starts = [];
      var contains = [];
      D.choices.forEach(function (w) {
        var lw = w.toLowerCase();
        if (q && lw === q) exact.push(w);
        else if (lw.indexOf(q) === 0) starts.push(w);
        else if (q && lw.indexOf(q) > 0) contains.push(w);
      });
      shown = exact.concat(starts, contains);
      list.textContent = '';
      shown.forEach(function (w, j) {
        list.appendChild(el('li', { role: 'option', id: 'word-' + j, text: w, 'data-word': w,
                                    onclick: function () { box.value = w; refresh(); box.focus(); } }));
      });
      count.textContent = shown.length + ' of ' + D.choices.length + ' words match';
      active = -1;
      if (q && shown.length) setActive(0);
      submit.disabled = chosen() === null;
    }
    function answer() {
      var w = chosen();
      if (w !== null) next(t, w, performance.now() - start);
    }
    box.addEventListener('input', refresh);
    box.addEventListener('keydown', function (e) {
      if (e.key === 'ArrowDown') { setActive(active + 1); e.preventDefault(); }
      else if (e.key === 'ArrowUp') { setActive(active - 1); e.preventDefault(); }
      else if (e.key === 'Enter') {
        e.preventDefault();
        if (chosen() !== null && (active < 0 || shown[active] === chosen())) answer();
        else if (active >= 0) { box.value = shown[active]; refresh(); }
      }
    });
    submit.addEventListener('click', answer);
    var p = player(t.stimulus, 'Play the sound', false, function () {
      start = performance.now();
      box.disabled = false;
      box.focus();
    });
    refresh();
    screen(t.kind === 'practice' ? 'practice_trial' : 'trial', head.concat([
      para('Play the sound (once), then type to find the word you heard and press Enter.'),
      el('p', {}, [p.button]), p.note, box, count, list, el('p', {}, [submit])]));
    p.button.focus();
  }

  // The image task: one image, one button per category; arrow keys move between buttons.
  function imageTrial(t, head) {
    var start = performance.now();
    var img = el('img', { 'class': 'stimulus', src: t.stimulus, alt: 'the image to recognise' });
    img.addEventListener('load', function () { start = performance.now(); });
    var buttons = D.choices.map(function (c) {
      return el('button', { type: 'button', text: c, 'data-answer': c,
                            onclick: function () { next(t, c, performance.now() - start); } });
    });
    var grid = el('div', { 'class': 'grid', role: 'group', 'aria-label': 'categories' }, buttons);
    grid.addEventListener('keydown', function (e) {
      var i = buttons.indexOf(document.activeElement);
      var step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 4, ArrowUp: -4 }[e.key];
      if (i < 0 || !step) return;
      e.preventDefault();
      buttons[Math.max(0, Math.min(buttons.length - 1, i + step))].focus();
    });
    screen(t.kind === 'practice' ? 'practice_trial' : 'trial', head.concat([
      img, para('Which category does the image show?'), grid]));
    buttons[0].focus();
  }

  function finish() {
    window.removeEventListener('beforeunload', guard);
    var text = csvText();
    var name = 'results_' + S.participant.replace(/[^A-Za-z0-9_-]/g, '_') + '_' + S.seed + '.csv';
    var status = para(D.post_url ? 'Sending your results…' : 'Please download your results file and ' +
                      'send it to the experimenter as instructed.', 'message');
    var download = el('button', { 'class': 'primary', id: 'download', text: 'Download the results', type: 'button',
                                  onclick: function () {
                                    var url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
                                    var a = el('a', { href: url, download: name });
                                    document.body.appendChild(a);
                                    a.click();
                                    a.remove();
                                    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
                                  } });
    screen('end', [progressBar(), el('h1', { text: 'Thank you!' }), para('You have finished the experiment.'),
                   status, el('p', {}, [download])]);
    download.focus();
    if (D.post_url) {
      // text/plain keeps the request "simple" (no CORS preflight), so any static collector can take it.
      fetch(D.post_url, { method: 'POST', headers: { 'Content-Type': 'text/plain;charset=utf-8' }, body: text })
        .then(function (r) {
          if (!r.ok) throw new Error(String(r.status));
          status.textContent = 'Your results were sent. You may close this page.';
          status.className = 'message ok';
        })
        .catch(function () {
          status.textContent = 'Your results could not be sent; please download the file and send it to ' +
                               'the experimenter.';
          status.className = 'message bad';
        });
    }
  }

  welcome();
}());
