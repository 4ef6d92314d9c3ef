"""Keras layer wrapping :class:`tfcochleagram.graph.CochleagramGraph`."""

import keras

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
        config = super().get_config()
        serialisable = {k: v for k, v in self.coch_params.items()
                        if k not in ('custom_filts', 'custom_compression_op')}
        config.update(sr=self.sr, **serialisable)
        return config
