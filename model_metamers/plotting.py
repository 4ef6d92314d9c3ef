"""Figures of generation results (needs matplotlib: ``pip install model_metamers[plots]``)."""

import os

import numpy as np

from model_metamers.fileio import save_figure


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    save_figure(fig, path, dpi=100, bbox_inches='tight')


def save_cochleagram_png(path, cochleagram, title=None):
    """Write a cochleagram (``[n_filters, time, 1]`` or ``[n_filters, time]``) as an image.

    Low frequencies at the bottom.
    """
    plt = _plt()
    coch = np.asarray(cochleagram).squeeze()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.imshow(coch, origin='lower', aspect='auto', cmap='Blues')
    ax.set_xlabel('time (frames)')
    ax.set_ylabel('filter')
    if title:
        ax.set_title(title)
    _save(fig, path)
    plt.close(fig)


def cochleagram_axes(network):
    """``(seconds per frame, centre frequency in Hz of every filter row)`` of ``network``'s
    cochleagram stage, or None when it has none (or its filters are not known)."""
    try:
        graph = network.model.get_layer('cochleagram').graph
    except (ValueError, AttributeError):
        return None
    freqs = getattr(graph, 'center_freqs', None)
    if freqs is None:
        return None
    freqs = np.asarray(freqs, np.float64)
    params = graph.params
    if len(freqs) != graph.n_filters:  # the centre frequencies include dropped edge filters
        edge = int(params.get('SAMPLE_FACTOR', 1))
        extra = params.get('erb_filter_kwargs') or {}
        start = edge if extra.get('no_lowpass') else 0
        stop = len(freqs) - (edge if extra.get('no_highpass') else 0)
        freqs = freqs[start:stop]
    if len(freqs) != graph.n_filters or not params.get('ENV_SR'):
        return None
    return 1.0 / float(params['ENV_SR']), freqs


def _draw_cochleagram(ax, coch, axes, first):
    """A cochleagram panel with time (s) and filter centre frequency (Hz) axes."""
    coch = np.asarray(coch).squeeze()
    if axes is None or coch.shape[0] != len(axes[1]):
        ax.imshow(coch, origin='lower', aspect='auto', cmap='Blues')
        ax.set_xlabel('time (frames)', fontsize=7)
        if first:
            ax.set_ylabel('filter', fontsize=7)
        return
    seconds, freqs = axes
    ax.imshow(coch, origin='lower', aspect='auto', cmap='Blues',
              extent=(0, coch.shape[1] * seconds, -0.5, coch.shape[0] - 0.5))
    rows = np.unique(np.linspace(0, len(freqs) - 1, 5).round().astype(int))
    ax.set_yticks(rows)
    ax.set_yticklabels(['%.0f' % freqs[r] for r in rows] if first else [], fontsize=6)
    ax.tick_params(axis='x', labelsize=6)
    ax.set_xlabel('time (s)', fontsize=7)
    if first:
        ax.set_ylabel('frequency (Hz)', fontsize=7)


def _rho_against_null(ax, layers, attrs):
    """Each metamer's rho at its matched layer beside the null distribution's maximum there."""
    x = np.arange(len(layers))
    rho = [float(a['spearman_matched']) for a in attrs]
    null = np.array([float(a.get('null_max', np.nan)) for a in attrs])
    colours = ['tab:green' if a['passed'] else 'tab:red' for a in attrs]
    ax.scatter(x, rho, c=colours, zorder=3, label='metamer rho (green: passed, red: failed)')
    if np.any(np.isfinite(null)):
        ax.scatter(x, null, marker='_', s=600, color='k', zorder=2, label='null maximum')
    else:
        ax.text(0.5, 0.1, 'no null distribution: passed = same class only', transform=ax.transAxes,
                ha='center', fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(layers, fontsize=7)
    ax.set_xlim(-0.5, len(layers) - 0.5)
    ax.set_ylim(min(-0.05, min(rho) - 0.05), 1.05)
    ax.set_ylabel('Spearman rho\n(matched layer)', fontsize=7)
    ax.legend(fontsize=6, loc='lower right')


def result_figure(network, result_path, out_path):
    """One figure per input: natural and metamers (cochleagrams for audio) and the Spearman matrix."""
    from model_metamers import results

    plt = _plt()
    # Group names: the layer, plus @seed<N> for further seeds (results.result_key).
    res = {rec.key: rec for rec in results.file_records(result_path)}
    layers = sorted(res, key=lambda n: (network.metamer_layers.index(res[n].layer)
                                        if res[n].layer in network.metamer_layers else 99, res[n].seed))
    first = res[layers[0]]['datasets']
    audio_stimulus = network.modality == 'audio' and first['metamer'].shape == tuple(network.input_shape)
    has_cochleagram = 'cochleagram' in network.stages

    coch_axes = cochleagram_axes(network) if network.modality == 'audio' else None

    def draw(ax, x, first):
        if audio_stimulus and has_cochleagram:
            coch = network.activations(x[None], ['cochleagram'])['cochleagram'].numpy()[0]
            _draw_cochleagram(ax, coch, coch_axes, first)
        elif audio_stimulus:
            ax.plot(np.arange(np.size(x)) / float(network.sample_rate or 1), np.asarray(x).ravel(), lw=0.3)
            ax.set_yticks([])
            ax.set_xlabel('time (s)' if network.sample_rate else 'sample', fontsize=7)
        elif network.modality == 'image':
            ax.imshow(np.clip(x, 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
        else:  # a cochleagram-domain metamer: the array is the cochleagram
            _draw_cochleagram(ax, x, coch_axes, first)

    panels = [('natural', first['natural'])] + [(layer, res[layer]['datasets']['metamer']) for layer in layers]
    fig = plt.figure(figsize=(2.6 * len(panels), 8.6))
    grid = fig.add_gridspec(3, len(panels), height_ratios=[1, 1.2, 0.7], hspace=0.8)
    for col, (name, x) in enumerate(panels):
        ax = fig.add_subplot(grid[0, col])
        draw(ax, x, col == 0)
        if name == 'natural':
            ax.set_title('natural')
        else:
            attrs = res[name]['attrs']
            ax.set_title('%s\nrho=%.3f %s' % (name, attrs['spearman_matched'],
                                             'pass' if attrs['passed'] else 'fail'), fontsize=8)
    measured = [str(m) for m in res[layers[0]]['datasets']['spearman_layers']]
    matrix = np.full((len(layers), len(measured)), np.nan)
    for r, layer in enumerate(layers):
        names = [str(m) for m in res[layer]['datasets']['spearman_layers']]
        values = dict(zip(names, res[layer]['datasets']['spearman_all_layers']))
        matrix[r] = [values.get(m, np.nan) for m in measured]
    ax = fig.add_subplot(grid[1, :])
    im = ax.imshow(matrix, vmin=-1, vmax=1, cmap='RdBu_r', aspect='auto')
    ax.set_yticks(range(len(layers)))
    ax.set_yticklabels(layers, fontsize=7)
    ax.set_xticks(range(len(measured)))
    ax.set_xticklabels(measured, rotation=45, ha='right', fontsize=7)
    ax.set_ylabel('generation layer')
    ax.set_xlabel('measured layer (Spearman rho, metamer vs natural)')
    fig.colorbar(im, ax=ax, fraction=0.02)
    _rho_against_null(fig.add_subplot(grid[2, :]), layers, [res[layer]['attrs'] for layer in layers])
    fig.suptitle('%s: %s' % (network.name, os.path.basename(result_path)))
    _save(fig, out_path)
    plt.close(fig)
