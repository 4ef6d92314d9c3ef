"""Result records: what one finished (input, layer, seed) job stores, and reading it back.

A job's record is the group of a part file (see :mod:`model_metamers.results`
for the file layout): datasets from the synthesiser's per-stimulus record and
the validation, attributes from the settings, the validation and the run.
:func:`job_record` builds it, :func:`finished_attrs` tells whether a part on
disk is this job done with these settings, :func:`revalidate_part` redoes
only its validation (another or no null distribution).
"""

import os

import numpy as np

from model_metamers import __version__, results, validation

# The synthesiser's per-stimulus record (MetamerSynthesizer.record) as stored, in file order.
SYNTHESIS_DATASETS = ('metamer', 'loss', 'loss_steps', 'grad_norm', 'change_norm', 'learning_rates',
                      'snapshots', 'snapshot_steps')


def job_record(network, layer, synth, k, natural, val, settings, weights, weights_id):
    """``(datasets, attrs)`` of stimulus ``k`` of the batch ``synth`` made for ``layer``.

    ``natural``: the batch's natural stimuli as loaded (``[batch] + input_shape``);
    ``val``: the stimulus' :class:`~model_metamers.validation.Validation`. Its own
    history: it may have stopped (converged, diverged) before its batch mates.
    """
    record = synth.record(k)
    datasets = {name: record[name] for name in SYNTHESIS_DATASETS}
    datasets['natural'] = synth.natural_representation[k]
    val_attrs, val_datasets = validation_record(network, val)
    datasets.update(val_datasets)
    if synth.domain == 'cochleagram':
        datasets['natural_waveform'] = natural[k]
    attrs = dict(val_attrs, status=record['status'], message=record['message'],
                 final_loss=float(record['loss'][-1]), elapsed_s=record['elapsed_s'],
                 **settings_attrs(settings, synth, weights, weights_id))
    attrs['seed'] = synth.seeds[k]
    attrs['iterations'] = record['iterations']
    attrs['layer'] = layer
    attrs['matched_as'] = network.matching(layer, synth.modified_relu)
    # HDF5 lists groups alphabetically; readers sort layers by this.
    attrs['layer_index'] = (network.metamer_layers.index(layer)
                            if layer in network.metamer_layers else len(network.metamer_layers))
    return datasets, attrs


def settings_attrs(settings, synth, weights, weights_id):
    """The run's settings as a job's attributes (what :func:`finished_attrs` compares)."""
    return {'learning_rate': synth.learning_rate, 'iterations': synth.step,
            'requested_iterations': settings.iterations if settings.iterations is not None else -1,
            'seed': synth.seeds[0], 'weights': str(weights), 'weights_sha1': weights_id,
            'procedure': synth.procedure.name,
            'domain': synth.domain, 'modified_relu': synth.modified_relu,
            'log_every': synth.log_every, 'initial_noise': synth.initial_noise,
            'stage_iterations': getattr(synth.procedure, 'block_length', -1),
            'stages': getattr(synth.procedure, 'stages', -1),
            'package_version': __version__, 'network': synth.network.name}


def finished_attrs(path, layer, settings, weights, weights_id, learning_rate):
    """The attributes of the part at ``path`` if it holds this job done with these settings, else None."""
    if not os.path.exists(path):
        return None
    try:
        attrs = results.read_result(path)[results.result_key(layer, settings.seed)]['attrs']
    except (OSError, KeyError, ValueError, RuntimeError):
        return None
    wanted_iter = settings.iterations if settings.iterations is not None else -1
    # Parts written before weights were fingerprinted have no weights_sha1: the path decides.
    same = (attrs.get('requested_iterations') == wanted_iter and attrs.get('seed') == settings.seed
            and attrs.get('weights') == str(weights)
            and attrs.get('weights_sha1', weights_id) == weights_id
            and attrs.get('procedure') == settings.procedure
            and attrs.get('domain') == settings.domain
            and bool(attrs.get('modified_relu', True)) == bool(settings.modified_relu)
            and (settings.procedure != 'feather2023' or (
                attrs.get('stage_iterations', 3000) == (settings.stage_iterations or 3000)
                and attrs.get('stages', 8) == (settings.stages or 8)))
            and np.isclose(attrs.get('learning_rate', np.nan), learning_rate))
    return attrs if same else None


def validation_record(network, val):
    """``(attrs, datasets)`` a result stores for one :class:`validation.Validation`."""
    attrs = dict(val.as_attrs(), natural_class_name=class_name(network, val.natural_class),
                 metamer_class_name=class_name(network, val.metamer_class))
    datasets = {'spearman_all_layers': np.asarray(list(val.spearman_layers.values())),
                'spearman_layers': np.asarray(list(val.spearman_layers), dtype='S')}
    return attrs, datasets


def revalidate_part(path, key, network, null):
    """Validate a finished part again (another or no null distribution) and rewrite it.

    Only validation is redone, from the stored metamer and natural stimulus (or
    cochleagrams); returns the new attributes.
    """
    res = results.read_result(path)
    datasets, attrs = dict(res[key]['datasets']), dict(res[key]['attrs'])
    layer, _ = results.layer_and_seed(key, attrs)
    from_stage = network.representation_stage if attrs.get('domain') == 'cochleagram' else None
    val = validation.validate(network, datasets['natural'][None], datasets['metamer'][None], layer,
                              null=null, from_stage=from_stage,
                              criterion=results._text(attrs.get('procedure', 'feather2019')))[0]
    new_attrs, new_datasets = validation_record(network, val)
    attrs.update(new_attrs)
    datasets.update(new_datasets)
    results.write_part(path, res['_file'], key, datasets, attrs)
    return attrs


def class_name(network, index):
    """The network's name of class ``index`` (``'none'`` for None, the index itself if unknown)."""
    if index is None:
        return 'none'
    if isinstance(index, (int, np.integer)) and 0 <= index < len(network.class_names):
        return network.class_names[index]
    return str(index)
