"""model_metamers.stimuli on its own: the demo inputs, folders of inputs, output stems, loading."""

import os
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io.wavfile

from model_metamers import stimuli
from model_metamers.errors import GenerationError


def _net(name='word_reduced_aliasing', modality='audio', **kw):
    return SimpleNamespace(name=name, modality=modality, **kw)


def test_default_inputs_are_shipped_files_of_the_network_modality():
    """No ``--input``: one shipped file; a keyword-spotting network gets its 1 s, 16 kHz keyword
    sound, the word networks another sound, image networks an image."""
    (word,) = stimuli.default_inputs(_net())
    (kws,) = stimuli.default_inputs(_net('kws_2d'))
    (image,) = stimuli.default_inputs(_net('vgg_19', 'image'))
    for path, suffixes in ((word, ('.wav',)), (kws, ('.wav',)), (image, ('.png', '.jpg', '.jpeg'))):
        assert os.path.isfile(path) and path.lower().endswith(suffixes)
    rate, samples = scipy.io.wavfile.read(kws)
    assert (rate, len(samples)) == (16000, 16000) and kws != word


def test_input_extensions_by_modality():
    assert {'.wav', '.flac', '.ogg'} <= set(stimuli.input_extensions('audio'))
    assert {'.png', '.jpg', '.jpeg'} <= set(stimuli.input_extensions('image'))
    assert '.png' not in stimuli.input_extensions('audio')


def test_expand_inputs_keeps_named_files_and_reads_folders_in_order(tmp_path):
    """Folders give their files of the modality, sorted, suffixes in any case; files named
    directly are kept whatever their suffix; empty names are skipped; paths may be Path objects."""
    for name in ('b.WAV', 'a.wav', 'c.txt'):
        (tmp_path / name).write_bytes(b'')
    named = tmp_path / 'notes.txt'
    assert stimuli.expand_inputs([tmp_path, '', str(named)], 'audio') == [
        str(tmp_path / 'a.wav'), str(tmp_path / 'b.WAV'), str(named)]
    other = tmp_path / 'more'
    other.mkdir()
    (other / 'c.flac').write_bytes(b'')
    # Everything named before a folder is kept: a file, and another folder's files.
    assert stimuli.expand_inputs([str(named), str(other), str(tmp_path)], 'audio') == [
        str(named), str(other / 'c.flac'), str(tmp_path / 'a.wav'), str(tmp_path / 'b.WAV')]
    with pytest.raises(GenerationError, match=r'holds no image files \(\.png.*give a folder of images'):
        stimuli.expand_inputs([tmp_path], 'image')


def test_stems_are_the_file_names_and_a_shared_one_is_refused():
    assert stimuli.stems_of(['a/x.wav', 'b/y.tar.flac']) == ['x', 'y.tar']
    with pytest.raises(GenerationError, match=r"inputs a/x.wav and b/x.flac share the name 'x'"):
        stimuli.stems_of(['a/x.wav', 'c/z.wav', 'b/x.flac'])


def test_load_stimulus_gives_the_network_input_shape(tmp_path):
    """Audio: the network's rate and duration (its input length / its rate); images: the
    network's side length."""
    path = str(tmp_path / 'tone.wav')
    t = np.arange(8000) / 8000.0
    scipy.io.wavfile.write(path, 8000, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    sound = stimuli.load_stimulus(_net(input_shape=(6000,), sample_rate=12000), path)
    assert sound.shape == (6000,) and sound.dtype == np.float32
    image_path = stimuli.default_inputs(_net('vgg_19', 'image'))[0]
    image = stimuli.load_stimulus(_net('vgg_19', 'image', input_shape=(32, 32, 3)), image_path)
    assert image.shape == (32, 32, 3) and 0 <= image.min() and image.max() <= 1
