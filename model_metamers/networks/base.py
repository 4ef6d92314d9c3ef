"""The object every registered network is: a Keras functional model with named stages.

A :class:`MetamerNetwork` wraps one Keras functional model whose input is the
stimulus (a waveform ``[batch, T]`` or an image ``[batch, H, W, 3]`` in [0, 1];
all preprocessing is inside the model) and whose outputs are a dict of every
named stage (layer output) a user may match or measure. It also carries what
synthesis and validation need to know: the paper's metamer layers in order, the
class names, which stages are ReLU outputs (for the modified-gradient ReLU),
the modality and the default optimiser settings.
"""

import keras
import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError


class UnknownLayerError(UserError, ValueError):
    """A stage name that the network does not have."""


class NotDifferentiableError(UserError, ValueError):
    """A matched layer whose gradient does not reach the stimulus."""


class MetamerNetwork:
    """A network ready for metamer synthesis.

    Args:
      name: registry name (e.g. ``'word_reduced_aliasing'``).
      inputs: the Keras input tensor (the stimulus).
      stages: ordered dict ``{stage name: KerasTensor}``, every reachable stage.
      metamer_layers: the paper's generation layers, in network order.
      class_names: one name per logit index of ``logits_stage`` (so
        ``class_names[argmax(logits)]`` is the predicted class).
      modality: ``'audio'`` or ``'image'``.
      relu_stages: ``{stage: [pre-activation stage, ...]}`` for stages that are
        ReLU outputs; the stage equals ``concat([relu(p) for p in pre], axis=-1)``.
        Synthesis matches ``concat(modified_relu(p))`` there instead.
      aliases: other names accepted for stages (``{'visualization_input': 'cochleagram'}``).
      logits_stage: the stage whose argmax is the predicted class.
      sample_rate: Hz, for audio networks.
      default_learning_rate, default_iterations: synthesis defaults (SPEC §4).
      representation_stage: for audio networks, the stage that can be optimised
        directly (``'cochleagram'``), giving cochleagram-domain metamers.
      info: free-form dict (checkpoint source, notes) saved with results.
    """

    def __init__(self, name, inputs, stages, metamer_layers, class_names, modality,
                 relu_stages=None, aliases=None, logits_stage='logits', sample_rate=None,
                 default_learning_rate=0.001, default_iterations=15000,
                 representation_stage=None, info=None):
        self.name = name
        self.inputs = inputs
        self.stages = dict(stages)
        self.model = keras.Model(inputs, self.stages, name=name)
        self.metamer_layers = list(metamer_layers)
        self.class_names = list(class_names)
        self.modality = modality
        self.relu_stages = dict(relu_stages or {})
        self.aliases = dict(aliases or {})
        self.logits_stage = logits_stage
        self.sample_rate = sample_rate
        self.default_learning_rate = default_learning_rate
        self.default_iterations = default_iterations
        self.representation_stage = representation_stage
        self.info = dict(info or {})
        self._submodels = {}
        self._differentiable = set()  # (layer, from_stage) pairs check_differentiable passed
        for layer in self.metamer_layers + [logits_stage]:
            self.resolve(layer)
        for stage, pre in self.relu_stages.items():
            for p in [stage] + list(pre):
                self.resolve(p)

    @classmethod
    def from_keras(cls, model, **options):
        """Any Keras 3 functional or sequential model as a network; see
        :func:`model_metamers.networks.custom.from_keras` for the options."""
        from model_metamers.networks.custom import from_keras
        return from_keras(model, **options)

    # ----------------------------------------------------------------- names
    @property
    def input_shape(self):
        """Shape of one stimulus, without the batch axis."""
        return tuple(self.inputs.shape[1:])

    @property
    def stage_names(self):
        return list(self.stages)

    def resolve(self, name):
        """Canonical stage name for ``name`` (aliases allowed); clear error otherwise."""
        name = self.aliases.get(name, name)
        if name not in self.stages:
            raise UnknownLayerError(
                'network %r has no layer %r; metamer layers: %s; all stages: %s'
                % (self.name, name, ', '.join(self.metamer_layers), ', '.join(self.stages)))
        return name

    def stage_size(self, name):
        """Number of features of one stimulus at a stage (Tables S4/S5)."""
        return int(np.prod(self.stages[self.resolve(name)].shape[1:]))

    # ---------------------------------------------------------- computation
    def submodel(self, names, from_stage=None):
        """Keras model from the stimulus (or from stage ``from_stage``) to ``{name: tensor}``.

        Only the part of the graph the requested stages need is computed.
        """
        names = tuple(self.resolve(n) for n in names)
        key = (names, from_stage)
        if key not in self._submodels:
            inputs = self.inputs if from_stage is None else self.stages[self.resolve(from_stage)]
            self._submodels[key] = keras.Model(inputs, {n: self.stages[n] for n in names})
        return self._submodels[key]

    def activations(self, x, layers=None, from_stage=None):
        """Dict ``{layer: tensor}`` of the stages ``layers`` (default: metamer layers) for ``x``.

        ``x``: a batch of stimuli, ``[batch] + input_shape`` (or of the stage
        ``from_stage``). Keys are the names as given (aliases kept).
        """
        layers = list(layers) if layers is not None else list(self.metamer_layers)
        x = tf.convert_to_tensor(x, tf.float32)
        start = self.resolve(from_stage) if from_stage is not None else None
        # A Keras model cut at an inner stage cannot also output that stage: it is ``x`` itself.
        computed = [layer for layer in layers if self.resolve(layer) != start]
        out = self.submodel(computed, from_stage=from_stage)(x, training=False) if computed else {}
        return {layer: x if self.resolve(layer) == start else out[self.resolve(layer)]
                for layer in layers}

    def logits(self, x, from_stage=None):
        """Logits ``[batch, n_classes]`` for a batch of stimuli."""
        return self.activations(x, [self.logits_stage], from_stage=from_stage)[self.logits_stage]

    def classify(self, x, from_stage=None):
        """Predicted class index per stimulus (index into ``class_names``), int numpy array."""
        return np.argmax(self.logits(x, from_stage=from_stage).numpy(), axis=-1)

    def matched_tensor(self, outputs, layer, modified_relu=True):
        """The tensor synthesis matches at ``layer`` from ``outputs`` of ``submodel``.

        For ReLU stages with ``modified_relu``, returns the concatenation of
        ``modified_relu(pre)`` over the pre-activations (forward values equal
        the ordinary ReLU; the gradient is 1 everywhere).
        """
        from model_metamers.layers import modified_relu as _modified_relu

        name = self.resolve(layer)
        if modified_relu and name in self.relu_stages:
            parts = [_modified_relu(outputs[p]) for p in self.relu_stages[name]]
            return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
        return outputs[name]

    def stages_for_matching(self, layer, modified_relu=True):
        """Stage names ``matched_tensor`` needs from the model for ``layer``."""
        name = self.resolve(layer)
        if modified_relu and name in self.relu_stages:
            return list(self.relu_stages[name])
        return [name]

    def matching(self, layer, modified_relu=True):
        """What synthesis matches at ``layer``, in words (result files record it)."""
        name = self.resolve(layer)
        if name in self.relu_stages:
            pre = ', '.join(self.relu_stages[name])
            if modified_relu:
                return 'modified ReLU of %s (ReLU values, gradient 1 below zero)' % pre
            return 'ReLU output'
        activation = self.info.get('activations', {}).get(name)
        if activation:
            return 'layer output as is (activation %s: no modified-gradient form)' % activation
        return 'layer output'

    def check_differentiable(self, layer, from_stage=None):
        """Raise :class:`NotDifferentiableError` naming the first stage the gradient from
        ``layer`` back to the stimulus (or ``from_stage``) does not pass.

        Only networks that ask for it (``info['check_gradients']``, users' own models)
        are checked: the registered ones are differentiable by construction.
        """
        if not self.info.get('check_gradients'):
            return
        name = self.resolve(layer)
        start = self.resolve(from_stage) if from_stage is not None else None
        if (name, start) in self._differentiable:  # generation makes a synthesiser per batch
            return
        names = list(self.stages)
        first = names.index(start) + 1 if start else 0
        upto = names[first:names.index(name) + 1]
        shape = (1,) + tuple((self.stages[start] if start else self.inputs).shape[1:])
        x = tf.random.stateless_uniform(shape, (0, 0), 0.25, 0.75)
        model = self.submodel(upto, from_stage=start)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            out = model(x, training=False)
            sums = {n: tf.reduce_sum(tf.cast(out[n], tf.float32)) if out[n].dtype.is_floating
                    else None for n in upto}
        try:
            if sums[name] is not None and tape.gradient(sums[name], x) is not None:
                self._differentiable.add((name, start))
                return
            for n in upto:  # network order: the first stage the gradient does not reach
                if sums[n] is None or tape.gradient(sums[n], x) is None:
                    raise NotDifferentiableError(
                        'no gradient reaches the %s from layer %r of network %r: stage %r is not '
                        'differentiable (%s); match a layer before it, or replace it by a '
                        'differentiable layer' % ('cochleagram' if start else 'stimulus', name,
                                                  self.name, n, 'integer output' if sums[n] is None
                                                  else 'it has no gradient'))
        finally:
            del tape

    def describe(self):
        """One line per metamer layer: name, shape and feature count."""
        lines = []
        for layer in self.metamer_layers:
            shape = tuple(self.stages[self.resolve(layer)].shape[1:])
            lines.append('%-24s %-22s %d' % (layer, shape, self.stage_size(layer)))
        return '\n'.join(lines)

    def __repr__(self):
        return '<MetamerNetwork %s: %s input %s, %d metamer layers>' % (
            self.name, self.modality, self.input_shape, len(self.metamer_layers))
