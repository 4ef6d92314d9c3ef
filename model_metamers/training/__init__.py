"""Training the registered audio networks (``python -m model_metamers.train`` is the command line).

Modules, one job each:

* :mod:`.tasks`: what a network is trained for (softmax word / keyword classification,
  sigmoid multi-label AudioSet) and the loss and metric of each task.
* :mod:`.data`: labelled clips from a folder + ``labels.csv`` or from TFRecords
  (and the writer that makes TFRecords from a folder), as ``tf.data`` pipelines.
* :mod:`.augment`: the paper's augmentation (speech shifted in time, mixed with a
  background clip at a random SNR).
* :mod:`.image_augment`: the 2023 code's ImageNet training augmentation (random
  resized crop, flip, colour jitter, lighting), used by the 2023 image nulls.
* :mod:`.metrics`: accuracy and mean ROC AUC.
* :mod:`.checkpointing`: best / last weights, optimiser state and run state, atomic.
* :mod:`.loop`: the training loop (``tf.distribute``, early stopping, resume).
"""
