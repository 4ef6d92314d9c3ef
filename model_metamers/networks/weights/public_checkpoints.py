"""Public download addresses of the speech models' released weights (for the fetcher).

``PUBLIC_CHECKPOINTS`` maps a registered network name to the address of its
checkpoint as published; ``EXTRA_FILES`` lists other files of the same
release that a user may want next to it.
"""

VGGISH_CHECKPOINT_URL = 'https://storage.googleapis.com/audioset/vggish_model.ckpt'
VGGISH_PCA_PARAMS_URL = 'https://storage.googleapis.com/audioset/vggish_pca_params.npz'
DEEPSPEECH_RELEASE = '0.5.1'
DEEPSPEECH_CHECKPOINT_URL = ('https://github.com/mozilla/DeepSpeech/releases/download/v0.5.1/'
                             'deepspeech-0.5.1-checkpoint.tar.gz')
# The earlier release the network also loads (a folder holding the V2 checkpoint prefix
# model.v0.4.1); not fetched by default.
DEEPSPEECH_041_CHECKPOINT_URL = ('https://github.com/mozilla/DeepSpeech/releases/download/v0.4.1/'
                                 'deepspeech-0.4.1-checkpoint.tar.gz')
DEEPSPEECH_CHECKPOINTS = {'0.5.1': DEEPSPEECH_CHECKPOINT_URL, '0.4.1': DEEPSPEECH_041_CHECKPOINT_URL}

PUBLIC_CHECKPOINTS = {
    # A single file in the TF1 "V1" checkpoint format (no .index / .data files).
    'vggish': VGGISH_CHECKPOINT_URL,
    # A tarball holding a folder with a TF "V2" checkpoint (checkpoint, *.index, *.data-*).
    'deepspeech': DEEPSPEECH_CHECKPOINT_URL,
}

# VGG-19's null distribution of the original release (jenellefeather/model_metamers README.md),
# a separate download beside the TF-Slim tarball.
VGG_NULL_URL = ('http://mcdermottlab.mit.edu/jfeather/model_metamers/assets/'
                'vgg_null_dist_spearman_r.pckl')

EXTRA_FILES = {
    'vggish': [VGGISH_PCA_PARAMS_URL],
    'vgg_19': [VGG_NULL_URL],
}
