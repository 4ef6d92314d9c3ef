"""The embedded default run (``run_generation.py --demo``, ``make demo``)."""

import os

from model_metamers.networks.weights.checkpoints import default_weights_path

# The demo runs a trained network so its metamers validate: the paper's word network when the
# user has converted its checkpoint, otherwise the keyword-spotting network whose weights ship
# with the project (at its default 1500 iterations). Untrained word_reduced_aliasing is the last
# resort (a checkout without weights).
DEMOS = (
    dict(network='word_reduced_aliasing', layers=['pool_0_0', 'conv_2'], iterations=200, log_every=50),
    dict(network='kws_2d', layers=['conv_1', 'fc_intermediate'], iterations=1500, log_every=250),
)
DEMO_FALLBACK = dict(network='word_reduced_aliasing', layers=['pool_0_0', 'conv_2'], iterations=200,
                     log_every=50, weights='random')


def demo_settings():
    """The demo's network, layers, iterations and weights (a dict)."""
    for demo in DEMOS:
        path = default_weights_path(demo['network'])
        if os.path.exists(path):
            return dict(demo, weights=path)
    return dict(DEMO_FALLBACK)
