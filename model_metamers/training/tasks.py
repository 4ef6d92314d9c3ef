"""Training tasks of a network: one per output head.

A task has a name, a kind and the logits stage it reads:

* ``softmax`` (``word``, ``keyword`` and any unnamed single-head task): one class
  per clip, sparse softmax cross-entropy, metric accuracy (fraction, 0-1);
* ``sigmoid`` (``audioset``): any number of classes per clip (multi-hot target),
  sigmoid cross-entropy summed over classes, metric mean ROC AUC over classes.

Networks list their tasks in ``net.info['tasks']`` (the audio CNNs and the
keyword-spotting nets do); a network without that list has one softmax task
``class`` on its ``logits`` stage. With several heads the loss is the sum of
the tasks' losses and the stage of task ``t`` is ``logits_<t>``.
"""

import dataclasses

import tensorflow as tf

from model_metamers.errors import UserError

SIGMOID_TASKS = ('audioset',)


class TaskError(UserError, ValueError):
    """A network that cannot be trained (no logits for a task)."""


@dataclasses.dataclass
class Task:
    name: str
    kind: str          # 'softmax' or 'sigmoid'
    stage: str         # logits stage of the network
    class_names: list

    @property
    def n_classes(self):
        return len(self.class_names)

    @property
    def metric_name(self):
        return 'accuracy' if self.kind == 'softmax' else 'mean_auc'

    def per_example_loss(self, target, logits):
        """Loss per clip ``[batch]``: target int ``[batch]`` (softmax) or multi-hot ``[batch, C]``."""
        if self.kind == 'softmax':
            return tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.cast(target, tf.int32), logits=logits)
        return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(target, logits.dtype), logits=logits), axis=-1)


def tasks_for(net):
    """The :class:`Task` list of a :class:`~model_metamers.networks.MetamerNetwork`."""
    names = list(net.info.get('tasks') or ['class'])
    by_task = net.info.get('class_names_by_task') or {}
    tasks = []
    for name in names:
        stage = 'logits' if len(names) == 1 else 'logits_%s' % name
        if stage not in net.stages:
            raise TaskError('network %s has no stage %s for its task %s' % (net.name, stage, name))
        classes = list(by_task.get(name, net.class_names if len(names) == 1 else []))
        width = int(net.stages[stage].shape[-1])
        if len(classes) != width:
            classes = ['%s_%03d' % (name, i) for i in range(width)]
        kind = 'sigmoid' if name in SIGMOID_TASKS else 'softmax'
        tasks.append(Task(name, kind, stage, classes))
    return tasks
