"""Network-to-network transfer (Figures 5 and 6): metamers of network A classified by network B.

Usage::

    python -m model_metamers.transfer --results_dir=metamers_out/vgg_19 \\
        --classifiers=resnet_v2_101,inception_v3 --output_dir=transfer/ [--labels=labels.csv]

For every generation layer of A, the accuracy of each classifier B on A's
metamers, with a bootstrapped SEM over inputs. Tasks: the word task for audio
networks; for image networks the 1000-way ImageNet task and the 16-way task
(Geirhos et al.'s category aggregation). The correct answer of an input is its
label in ``--labels`` (CSV ``input,label`` with the input's file stem and a class
name; every input needs a row, and its label must be a class of B) or, without
labels, B's own prediction for the natural stimulus. Other ``.h5`` files in a
results folder (e.g. a null distribution) are skipped with a note. Image
metamers are resized to B's input size (bilinear, antialiased).
"""

import csv
import io
import os
import sys

import numpy as np

from model_metamers.errors import UserError
from model_metamers.fileio import save_figure, write_text
from model_metamers import results as _results


class TransferError(UserError, ValueError):
    """Results and classifier that cannot be combined."""


def load_labels(path):
    """``{input stem: label}`` from a CSV with columns ``input,label``."""
    if not os.path.isfile(path):
        raise TransferError('--labels file %s does not exist; give a CSV with columns input,label '
                            '(input = the file name without its suffix)' % path)
    with open(path, newline='', encoding='utf-8', errors='replace') as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {'input', 'label'} <= set(reader.fieldnames):
            raise TransferError('%s must be a CSV with columns input,label' % path)
        return {row['input']: row['label'] for row in reader}


def label_of(labels, stem, class_names, network_name):
    """The correct answer of input ``stem`` from ``labels``: the one rule of transfer and export.

    An input without a row, or a label that is not one of ``class_names`` (the
    network's classes; None or empty: not checked), is an error naming the input
    and the fix: a wrong answer key would silently miscount trials.
    """
    if stem not in labels:
        raise TransferError('no label for input %r in the labels file; add a row "%s,<class name>" '
                            '(every input needs its correct class)' % (stem, stem))
    label = labels[stem]
    if class_names and label not in class_names:
        shown = ', '.join(list(class_names)[:8]) + (', ...' if len(class_names) > 8 else '')
        raise TransferError('the labels file gives input %r the label %r, which is not a class of %s '
                            '(its classes: %s); correct that row' % (stem, label, network_name, shown))
    return label


def load_metamers(results_dir, note=None):
    """``[(input, layer, layer_index, metamer, natural)]`` from a folder of result files.

    ``.h5`` files that are not metamer results are skipped with a note.
    """
    found = list(_results.records(results_dir, note))  # every seed's metamer of each input
    if not found:
        raise TransferError('no result files in %s; give the <output_dir>/<network> folder of a '
                            'run_generation.py run' % results_dir)
    out = []
    for rec in found:
        ds = rec.datasets
        if rec.attrs.get('domain') == 'cochleagram':
            natural = ds.get('natural_waveform', ds['natural'])
        else:
            natural = ds['natural']
        out.append((rec.stem, rec.layer, int(rec.attrs.get('layer_index', 0)), ds['metamer'], natural))
    return out


def _fit_input(network, x):
    """Bring a stimulus to ``network``'s input (resize images; check audio lengths)."""
    x = np.asarray(x, np.float32)
    if x.shape == tuple(network.input_shape):
        return x, None
    if network.modality == 'image' and x.ndim == 3:
        import tensorflow as tf
        size = network.input_shape[:2]
        return tf.image.resize(x[None], size, method='bilinear', antialias=True).numpy()[0], None
    stage = network.representation_stage
    if stage and x.shape == tuple(network.stages[stage].shape[1:]):
        return x, stage
    raise TransferError('a metamer of shape %s cannot be fed to %s (input %s)'
                        % (x.shape, network.name, network.input_shape))


def tasks_of(network):
    """Task names a classifier answers: ``word``/``classes`` (audio), ``imagenet1000`` and ``imagenet16`` (images)."""
    if network.modality == 'image':
        return ['imagenet1000', 'imagenet16']
    return ['classes']


def predict(network, stimuli, task, from_stage=None):
    """Predicted label names for a batch (class names; ImageNet names; 16-way category names)."""
    logits = network.logits(stimuli, from_stage=from_stage).numpy()
    if task == 'imagenet16':
        from model_metamers import imagenet
        return imagenet.sixteen_class_names(logits, network.info.get('logit_offset', 0))
    return [network.class_names[i] for i in np.argmax(logits, axis=-1)]


def bootstrap_sem(correct, n_boot=1000, seed=0):
    """Standard deviation of the bootstrapped mean accuracy (resampling inputs with replacement)."""
    correct = np.asarray(correct, np.float64)
    if len(correct) < 2:
        return np.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), size=(n_boot, len(correct)))
    return float(np.std(correct[idx].mean(axis=1), ddof=1))


def _task_classes(network, task):
    """The answers a classifier can give on ``task`` (what a label must be one of)."""
    if task == 'imagenet16':
        from model_metamers import imagenet
        return imagenet.categories()
    return list(network.class_names)


def _answer_16(classifier, label):
    """A 1000-way ImageNet label as its 16-way category (None: in none); a category stays itself."""
    from model_metamers import imagenet
    if label in imagenet.categories():
        return label
    index = list(classifier.class_names).index(label) - classifier.info.get('logit_offset', 0)
    return imagenet.category_of(index)


def chance_level(classifier, task):
    """Accuracy of guessing on ``task``: 1 / number of classes (NaN for a network without classes)."""
    classes = _task_classes(classifier, task)
    return 1.0 / len(classes) if classes else float('nan')


def transfer(metamers, classifier, labels=None, n_boot=1000, seed=0, generator_name=''):
    """Accuracy rows ``{generator, classifier, task, layer, layer_index, n, accuracy, sem}``.

    With ``labels`` every input needs a label that is a class of ``classifier``
    (:func:`label_of`); for the 16-way ImageNet task a 1000-way label counts as
    its category, and inputs whose class is in none of the 16 are left out.
    """
    rows = []
    for task in tasks_of(classifier):
        by_layer = {}
        for stem, layer, index, metamer, natural in metamers:
            if labels is not None:
                classes = _task_classes(classifier, task)
                if task == 'imagenet16':
                    classes = list(classifier.class_names) + classes
                answer = label_of(labels, stem, classes, classifier.name)
                if task == 'imagenet16':
                    answer = _answer_16(classifier, answer)
                    if answer is None:
                        continue
            x, stage = _fit_input(classifier, metamer)
            predicted = predict(classifier, x[None], task, from_stage=stage)[0]
            if labels is None:
                n, nstage = _fit_input(classifier, natural)
                answer = predict(classifier, n[None], task, from_stage=nstage)[0]
            by_layer.setdefault((index, layer), []).append(predicted == answer)
        for (index, layer), correct in sorted(by_layer.items()):
            rows.append({'generator': generator_name, 'classifier': classifier.name, 'task': task,
                         'layer': layer, 'layer_index': index, 'n': len(correct),
                         'accuracy': float(np.mean(correct)),
                         'sem': bootstrap_sem(correct, n_boot, seed),
                         'chance': chance_level(classifier, task)})
    return rows


FIELDS = ['generator', 'classifier', 'task', 'layer', 'layer_index', 'n', 'accuracy', 'sem', 'chance']


def write_csv(rows, path):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    write_text(path, buf.getvalue())


def plot(rows, path):
    """Accuracy per generation layer, one line per (classifier, task); error bars are bootstrapped
    SEMs over inputs, dotted lines the chance level of each task."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    keys = list(dict.fromkeys((r['generator'], r['classifier'], r['task']) for r in rows))
    layers = [layer for _, layer in sorted({(r['layer_index'], r['layer']) for r in rows})]
    for gen, clf, task in keys:
        sel = sorted((r for r in rows if (r['generator'], r['classifier'], r['task']) == (gen, clf, task)),
                     key=lambda r: r['layer_index'])
        ax.errorbar([layers.index(r['layer']) for r in sel], [r['accuracy'] for r in sel],
                    yerr=[0 if np.isnan(r['sem']) else r['sem'] for r in sel], marker='o', capsize=3,
                    label='%s -> %s (%s)' % (gen, clf, task))
    chances = {}
    for r in rows:
        if not np.isnan(r.get('chance', np.nan)):
            chances.setdefault(r['chance'], []).append(r['task'])
    for level, tasks in sorted(chances.items()):
        ax.axhline(level, color='0.4', ls=':', lw=1,
                   label='chance (%s): %.3g' % (', '.join(dict.fromkeys(tasks)), level))
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=45, ha='right')
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel('accuracy on metamers\n(error bars: bootstrapped SEM)')
    ax.set_xlabel('generation layer')
    ax.set_title('Metamers of %s classified by %s' % (
        ', '.join(dict.fromkeys(r['generator'] for r in rows)),
        ', '.join(dict.fromkeys(r['classifier'] for r in rows))), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv):
    from absl import flags
    from model_metamers import networks
    from model_metamers.errors import USER_ERRORS
    from model_metamers.weights import resolve_weights

    FLAGS = flags.FLAGS
    try:
        if FLAGS.bootstrap < 2:
            raise TransferError('--bootstrap must be at least 2 resamples, got %d; pass e.g. '
                                '--bootstrap=1000' % FLAGS.bootstrap)
        if FLAGS.seed < 0:
            raise TransferError('--seed must be 0 or more, got %d' % FLAGS.seed)
        labels = load_labels(FLAGS.labels) if FLAGS.labels else None
        names = [c for c in FLAGS.classifiers.split(',') if c]
        weights = [w for w in (FLAGS.classifier_weights or '').split(',') if w] or ['auto'] * len(names)
        if len(weights) != len(names):
            raise TransferError('give one --classifier_weights entry per classifier (%d), got %d'
                                % (len(names), len(weights)))
        rows = []
        for results_dir in [d for d in FLAGS.results_dir.split(',') if d]:
            metamers = load_metamers(results_dir)
            generator = os.path.basename(os.path.normpath(results_dir))
            for name, w in zip(names, weights):
                net = networks.build(name, weights=resolve_weights(name, w))
                rows += transfer(metamers, net, labels, FLAGS.bootstrap, FLAGS.seed, generator)
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        write_csv(rows, os.path.join(FLAGS.output_dir, 'transfer.csv'))
        try:
            plot(rows, os.path.join(FLAGS.output_dir, 'transfer.png'))
        except ImportError:
            pass
    except USER_ERRORS + (OSError,) as exc:  # TransferError among them
        print('error: %s' % exc, file=sys.stderr)
        return 1
    for r in rows:
        print('%-24s %-24s %-13s %-22s n=%-4d acc=%.3f sem=%.3f' % (
            r['generator'], r['classifier'], r['task'], r['layer'], r['n'], r['accuracy'], r['sem']))
    print('wrote %s' % os.path.join(FLAGS.output_dir, 'transfer.csv'))
    return 0


def _define_flags():
    from absl import flags
    flags.DEFINE_string('results_dir', None, 'folder(s) <output_dir>/<network> of the generating network(s)')
    flags.DEFINE_string('classifiers', None, 'comma-separated networks that classify the metamers')
    flags.DEFINE_string('classifier_weights', None, "comma-separated weights per classifier (default 'auto')")
    flags.DEFINE_string('labels', None, 'CSV input,label with the correct class name per input')
    flags.DEFINE_string('output_dir', 'transfer', 'where transfer.csv and transfer.png go')
    flags.DEFINE_integer('bootstrap', 1000, 'bootstrap resamples for the SEM')
    flags.DEFINE_integer('seed', 0, 'bootstrap seed')
    flags.mark_flags_as_required(['results_dir', 'classifiers'])


if __name__ == '__main__':
    from model_metamers import cli
    cli.run(main, _define_flags)
