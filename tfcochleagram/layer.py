"""Keras layer wrapping :class:`tfcochleagram.graph.CochleagramGraph`."""

import keras
import numpy as np

from tfcochleagram.graph import CochleagramGraph, resolve_params


@keras.saving.register_keras_serializable(package='tfcochleagram')
class Cochleagram(keras.layers.Layer):
    """Waveform ``[batch, T]`` float32 -> cochleagram ``[batch, n_filters, T*ENV_SR/sr, 1]``.

    Args:
      sr: sampling rate of the input in Hz.
      **params: the original ``cochleagram_graph`` keyword arguments (see
        ``tfcochleagram.DEFAULTS``); ``tfcochleagram.WORD_CONFIG`` gives the
        configuration of the word / AudioSet networks.

    The filterbank and downsampling taps are built once, when the layer first
    sees its input length. The layer has no weights. ``stages(x)`` returns
    every intermediate tensor by name.
    """

    def __init__(self, sr=20000, name='cochleagram', trainable=False, dtype=None, **params):
        # trainable / dtype come back from get_config() when a saved model is loaded.
        del trainable  # no weights
        super().__init__(name=name, trainable=False, dtype=dtype)
        resolve_params(params)  # fail early on a misspelt parameter
        self.sr = sr
        self.coch_params = dict(params)
        self.graph = None

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError('Cochleagram expects [batch, samples] input with a known number '
                             'of samples, got %s' % (tuple(input_shape),))
        self.graph = CochleagramGraph(input_shape[-1], self.sr, **self.coch_params)
        self.built = True

    def call(self, waveform):
        return self.graph(waveform)

    def stages(self, waveform):
        """Dict of every stage of the graph (``CochleagramGraph.stages``)."""
        if self.graph is None:
            self.build(tuple(waveform.shape))
        return self.graph.stages(waveform)

    def compute_output_shape(self, input_shape):
        graph = self.graph or CochleagramGraph(input_shape[-1], self.sr, **self.coch_params)
        return (input_shape[0],) + graph.output_shape

    def get_config(self):
        """The layer's settings, for saving a model. Custom filters are saved as a nested list of
        numbers, which the graph reads back as an array (a model saved without them would load
        with the default filterbank, silently); a custom compression function cannot be saved,
        so that is refused."""
        if self.coch_params.get('custom_compression_op') is not None:
            raise ValueError('a Cochleagram layer with custom_compression_op cannot be saved (a '
                             'function is not data); build the model in code and pass it as '
                             '--network=package.module:function instead of a saved file')
        config = super().get_config()
        params = dict(self.coch_params)
        if params.get('custom_filts') is not None:
            filts = np.asarray(params['custom_filts'])
            if np.iscomplexobj(filts):
                raise ValueError('a Cochleagram layer with complex custom_filts cannot be saved; '
                                 'give real-valued filters (the original filterbank is real)')
            params['custom_filts'] = filts.astype(np.float64).tolist()
        config.update(sr=self.sr, **params)
        return config
