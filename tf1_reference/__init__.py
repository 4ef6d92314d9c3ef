"""The original projects' TF1 graphs, rebuilt independently of model_metamers (not installed).

``tf1_reference.slim``: TF-Slim's VGG-19, Inception-V3 and ResNet-101-V2 graphs;
``tf1_reference.audio``: the audio networks as ``tf.compat.v1`` ``tf.layers`` graphs.
The tests compare the Keras networks against them, and ``bench/`` times them; both
import them from here (the repository root must be on ``sys.path``).
"""
