"""The checkpoint fetcher against a local HTTP server (127.0.0.1, in a thread) serving test tarballs."""

import hashlib
import io
import os
import tarfile

import numpy as np
import pytest

from model_metamers import fetch


def _tarball(members, prefix=''):
    """gzip tar bytes of ``{name: bytes}``; a value of None makes a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, '/etc/passwd'
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Big enough for several chunks and a cut in the middle; incompressible.
PAYLOAD = os.urandom(3 * (1 << 20) + 12345)


def _serve(server, name, members):
    data = _tarball(members)
    server.files['/' + name] = data
    return server.url + '/' + name, data


def test_fetch_unpacks_and_is_idempotent(server, tmp_path):
    url, _ = _serve(server, 'vgg_19_2016_08_28.tar.gz', {'vgg_19.ckpt': PAYLOAD})
    result = fetch.fetch('vgg_19', dest=str(tmp_path), url=url, progress=False)
    assert result['checkpoint'] == str(tmp_path / 'vgg_19.ckpt') and result['downloaded']
    assert (tmp_path / 'vgg_19.ckpt').read_bytes() == PAYLOAD
    assert not os.listdir(tmp_path / '.downloads')  # archive removed after unpacking
    n = len(server.requests)
    again = fetch.fetch('vgg_19', dest=str(tmp_path), url=url, progress=False)
    assert len(server.requests) == n and not again['downloaded']
    assert again['checkpoint'] == result['checkpoint']


def test_interrupted_download_resumes_with_range(server, tmp_path):
    url, data = _serve(server, 'inception_v3_2016_08_28.tar.gz', {'inception_v3.ckpt': PAYLOAD})
    cut = len(data) // 2
    server.cut = [cut]
    fetch.fetch('inception_v3', dest=str(tmp_path), url=url, progress=False)
    assert server.requests == [('/inception_v3_2016_08_28.tar.gz', None),
                               ('/inception_v3_2016_08_28.tar.gz', 'bytes=%d-' % cut)]
    assert (tmp_path / 'inception_v3.ckpt').read_bytes() == PAYLOAD


def test_resume_across_runs_from_part_file(server, tmp_path, capsys):
    url, data = _serve(server, 'resnet_v2_101_2017_04_14.tar.gz', {'resnet_v2_101.ckpt': PAYLOAD})
    server.cut = [1000, 5000]
    with pytest.raises(fetch.FetchError, match='again to resume') as err:
        fetch.fetch('resnet_v2_101', dest=str(tmp_path), url=url, retries=1, progress=False)
    assert len(str(err.value).splitlines()) == 1
    part = tmp_path / '.downloads' / 'resnet_v2_101_2017_04_14.tar.gz.part'
    assert part.stat().st_size == 6000
    assert not (tmp_path / 'resnet_v2_101.ckpt').exists()
    fetch.fetch('resnet_v2_101', dest=str(tmp_path), url=url, progress=True)
    assert server.requests[-1][1] == 'bytes=6000-'
    assert (tmp_path / 'resnet_v2_101.ckpt').read_bytes() == PAYLOAD
    assert '100.0%' in capsys.readouterr().err


def test_server_without_range_support_restarts(server, tmp_path):
    url, data = _serve(server, 'vgg_19_2016_08_28.tar.gz', {'vgg_19.ckpt': PAYLOAD})
    server.cut, server.ignore_range = [len(data) // 3], True
    fetch.fetch('vgg_19', dest=str(tmp_path), url=url, progress=False)
    assert (tmp_path / 'vgg_19.ckpt').read_bytes() == PAYLOAD


def test_complete_part_file_gets_416_and_is_used(server, tmp_path):
    url, data = _serve(server, 'vgg_19_2016_08_28.tar.gz', {'vgg_19.ckpt': b'abc'})
    (tmp_path / '.downloads').mkdir()
    (tmp_path / '.downloads' / 'vgg_19_2016_08_28.tar.gz.part').write_bytes(data)
    fetch.fetch('vgg_19', dest=str(tmp_path), url=url, progress=False)
    assert server.requests == [('/vgg_19_2016_08_28.tar.gz', 'bytes=%d-' % len(data))]
    assert (tmp_path / 'vgg_19.ckpt').read_bytes() == b'abc'


def test_sha256_checked(server, tmp_path):
    url, data = _serve(server, 'vgg_19_2016_08_28.tar.gz', {'vgg_19.ckpt': b'abc'})
    with pytest.raises(fetch.FetchError, match='wrong sha256'):
        fetch.fetch('vgg_19', dest=str(tmp_path), url=url, sha256='0' * 64, progress=False)
    assert not (tmp_path / 'vgg_19.ckpt').exists()
    assert not (tmp_path / '.downloads' / 'vgg_19_2016_08_28.tar.gz').exists()
    good = hashlib.sha256(data).hexdigest()
    fetch.fetch('vgg_19', dest=str(tmp_path), url=url, sha256=good.upper(), progress=False)
    assert (tmp_path / 'vgg_19.ckpt').read_bytes() == b'abc'


@pytest.mark.parametrize('members, message', [
    ({'../evil.ckpt': b'x', 'vgg_19.ckpt': b'x'}, 'outside the destination'),
    ({'/tmp/evil.ckpt': b'x', 'vgg_19.ckpt': b'x'}, 'outside the destination'),
    ({'link': None, 'vgg_19.ckpt': b'x'}, 'link or special file'),
    ({'something_else.ckpt': b'x'}, 'lacks the expected member'),
])
def test_unsafe_or_wrong_archives_rejected(server, tmp_path, members, message):
    url, _ = _serve(server, 'vgg_19_2016_08_28.tar.gz', members)
    dest = tmp_path / 'dest'
    with pytest.raises(fetch.FetchError, match=message) as err:
        fetch.fetch('vgg_19', dest=str(dest), url=url, progress=False)
    assert len(str(err.value).splitlines()) == 1
    written = [f for _, _, fs in os.walk(tmp_path) for f in fs]
    assert written == [], 'nothing may be unpacked or left behind: %s' % written


def test_corrupt_archive_rejected_and_removed(server, tmp_path):
    data = _tarball({'vgg_19.ckpt': PAYLOAD})
    server.files['/vgg_19_2016_08_28.tar.gz'] = data[:len(data) // 2]  # a short file, served whole
    with pytest.raises(fetch.FetchError, match='not a valid tar archive'):
        fetch.fetch('vgg_19', dest=str(tmp_path), url=server.url + '/vgg_19_2016_08_28.tar.gz',
                    progress=False)
    assert not (tmp_path / 'vgg_19.ckpt').exists()
    assert os.listdir(tmp_path / '.downloads') == []


def test_http_error_and_unknown_network(server, tmp_path):
    with pytest.raises(fetch.FetchError, match='HTTP 404'):
        fetch.fetch('vgg_19', dest=str(tmp_path), url=server.url + '/missing.tar.gz',
                    progress=False)
    with pytest.raises(fetch.FetchError, match='no public download'):
        fetch.fetch('audioset_reduced_aliasing', dest=str(tmp_path))


def test_audio_archive_in_a_folder_serves_both_word_networks_once(server, tmp_path, monkeypatch):
    members = {'word_aliased.ckpt.index': b'i', 'word_aliased.ckpt.data-00000-of-00001': b'd',
               'word_network_aliased.pckl': b'p', 'word_reduced_aliasing.ckpt.index': b'i',
               'word_reduced_aliasing.ckpt.data-00000-of-00001': b'd',
               'word_network_reduced_aliasing.pckl': b'p'}
    data = _tarball(members, prefix='network_files/')
    server.files['/audio.tar.gz'] = data
    sources = {k: v._replace(url=server.url + '/audio.tar.gz') for k, v in fetch.SOURCES.items()
               if k.startswith('word_')}
    monkeypatch.setattr(fetch, 'SOURCES', sources)
    results = fetch.fetch_all(dest=str(tmp_path), progress=False)
    assert len(server.requests) == 1
    assert {r['checkpoint'] for r in results} == {
        str(tmp_path / 'network_files' / 'word_aliased.ckpt'),
        str(tmp_path / 'network_files' / 'word_reduced_aliasing.ckpt')}


def test_command_line(server, tmp_path, capsys):
    url, _ = _serve(server, 'vgg_19_2016_08_28.tar.gz', {'vgg_19.ckpt': b'abc'})
    argv = ['fetch', '--network=vgg_19', '--dest=%s' % tmp_path, '--url=%s' % url, '--noprogress']
    assert fetch.main(argv) == 0
    assert str(tmp_path / 'vgg_19.ckpt') in capsys.readouterr().out
    assert fetch.main(argv) == 0
    assert 'already present' in capsys.readouterr().out
    assert fetch.main(['fetch', '--network=nope', '--dest=%s' % tmp_path]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: no public download') and err.count('\n') == 1
    assert fetch.main(['fetch']) == 2
    assert fetch.main(['fetch', '--all', '--url=%s' % url]) == 2
    assert fetch.main(['fetch', '--netwrk=vgg_19']) == 2
    assert fetch.main(['fetch', '--all', 'dest=x']) == 2  # a flag without its dashes


def _v1_checkpoint_bytes(tmp_path):
    """A real single-file (V1) TF checkpoint, like the published vggish_model.ckpt."""
    import tensorflow as tf
    v1 = tf.compat.v1
    (tmp_path / 'made').mkdir()
    path = str(tmp_path / 'made' / 'v1.ckpt')
    with tf.Graph().as_default():
        v1.get_variable('vggish/conv1/weights', initializer=np.ones((3, 3, 1, 2), np.float32))
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, path, write_meta_graph=False, write_state=False)
    return open(path, 'rb').read()


def test_single_file_source_and_extra_files(server, tmp_path, monkeypatch):
    ckpt = _v1_checkpoint_bytes(tmp_path)
    npz = io.BytesIO()
    np.savez(npz, pca_means=np.zeros(3))
    server.files['/vggish_model.ckpt'] = ckpt
    server.files['/vggish_pca_params.npz'] = npz.getvalue()
    monkeypatch.setitem(fetch.SOURCES, 'vggish',
                        fetch.SOURCES['vggish']._replace(url=server.url + '/vggish_model.ckpt'))
    monkeypatch.setitem(fetch.EXTRA_FILES, 'vggish', [server.url + '/vggish_pca_params.npz'])
    dest = tmp_path / 'ck'
    result = fetch.fetch('vggish', dest=str(dest), progress=False)
    assert result['checkpoint'] == str(dest / 'vggish_model.ckpt')
    assert (dest / 'vggish_model.ckpt').read_bytes() == ckpt
    assert (dest / 'vggish_pca_params.npz').exists()
    assert fetch.local_checkpoint('vggish', str(dest)) == str(dest / 'vggish_model.ckpt')
    n = len(server.requests)
    fetch.fetch('vggish', dest=str(dest), progress=False)
    assert len(server.requests) == n
    # A corrupt single file is rejected and not kept.
    server.files['/vggish_model.ckpt'] = b'not a checkpoint' * 100
    with pytest.raises(fetch.FetchError, match='not a readable TF checkpoint'):
        fetch.fetch('vggish', dest=str(tmp_path / 'other'), progress=False)
    assert not os.listdir(tmp_path / 'other' / '.downloads')


def test_folder_checkpoint_source(server, tmp_path):
    url, _ = _serve(server, 'deepspeech-0.5.1-checkpoint.tar.gz',
                    {'ds/checkpoint': b'model_checkpoint_path: "best_dev-1"\n',
                     'ds/best_dev-1.index': b'i', 'ds/best_dev-1.data-00000-of-00001': b'd'})
    result = fetch.fetch('deepspeech', dest=str(tmp_path), url=url, progress=False)
    assert result['checkpoint'] == str(tmp_path / 'ds')


def test_auto_weights_use_an_original_checkpoint_in_the_folder(server, tmp_path, monkeypatch):
    from model_metamers.generation import resolve_weights
    from model_metamers.networks.weights.checkpoints import CheckpointError
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(tmp_path))
    with pytest.raises(CheckpointError, match='model_metamers.fetch --network=vgg_19'):
        resolve_weights('vgg_19', 'auto')
    with pytest.raises(CheckpointError, match='no public checkpoint is known'):
        resolve_weights('audioset_reduced_aliasing', 'auto')
    url, _ = _serve(server, 'vgg_19_2016_08_28.tar.gz', {'vgg_19.ckpt': PAYLOAD})
    fetch.fetch('vgg_19', url=url, progress=False)
    # found, and converted on first use: these bytes are no checkpoint, so that fails in one line
    with pytest.raises(CheckpointError, match='cannot convert .*vgg_19.ckpt: .*not a TF checkpoint'):
        resolve_weights('vgg_19', 'auto', log=lambda msg: None)
    assert not (tmp_path / 'vgg_19.weights.h5').exists()
    (tmp_path / 'vgg_19.weights.h5').write_bytes(b'x')
    assert resolve_weights('vgg_19', 'auto') == str(tmp_path / 'vgg_19.weights.h5')
    assert resolve_weights('word_reduced_aliasing_random', 'auto') == 'random'


def _wav_bytes():
    buf = io.BytesIO()
    import scipy.io.wavfile
    scipy.io.wavfile.write(buf, 16000, np.zeros(1600, np.int16))
    return buf.getvalue()


def test_dest_that_is_a_file_is_a_one_line_error(server, tmp_path, capsys):
    url, _ = _serve(server, 'vgg_19_2016_08_28.tar.gz', {'vgg_19.ckpt': b'abc'})
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    for dest in (blocker, blocker / 'sub'):
        assert fetch.main(['fetch', '--network=vgg_19', '--dest=%s' % dest, '--url=%s' % url,
                           '--noprogress']) == 1
        err = capsys.readouterr().err
        assert err.startswith('error: --dest=%s: %s is a file, not a folder' % (dest, blocker))
        assert err.count('\n') == 1
    assert not server.requests  # refused before downloading


def test_a_url_serving_something_else_is_refused(server, tmp_path, capsys):
    server.files['/clip.wav'] = _wav_bytes()
    argv = ['fetch', '--network=vgg_19', '--dest=%s' % tmp_path, '--url=%s/clip.wav' % server.url,
            '--noprogress']
    assert fetch.main(argv) == 1
    captured = capsys.readouterr()
    assert 'downloaded' not in captured.out
    assert captured.err.startswith('error: clip.wav from %s/clip.wav is not a tar archive (it is a WAV file'
                                   % server.url)
    assert 'vgg_19_2016_08_28.tar.gz' in captured.err
    assert not os.path.exists(tmp_path / 'clip.wav') and not os.listdir(tmp_path / '.downloads')
    # A single-file network (VGGish): a WAV is not a checkpoint either.
    assert fetch.main(['fetch', '--network=vggish', '--dest=%s' % tmp_path,
                       '--url=%s/clip.wav' % server.url, '--noprogress']) == 1
    assert 'is not a readable TF checkpoint (it is a WAV file' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'clip.wav') and not os.path.exists(tmp_path / 'vggish_model.ckpt')


def test_a_mirror_is_stored_where_auto_weights_look(server, tmp_path, monkeypatch):
    # --weights=auto finds a fetched original checkpoint through fetch.local_checkpoint (and then
    # converts it on first use: tests/test_published_files.py)
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(tmp_path))
    server.files['/mirror/vggish-copy.bin'] = _v1_checkpoint_bytes(tmp_path)
    result = fetch.fetch('vggish', url=server.url + '/mirror/vggish-copy.bin', progress=False)
    assert result['checkpoint'] == str(tmp_path / 'vggish_model.ckpt')
    assert not os.path.exists(tmp_path / 'vggish-copy.bin')
    assert fetch.local_checkpoint('vggish') == str(tmp_path / 'vggish_model.ckpt')
    # An archive from a mirror with another name, unpacked into a folder, is found too.
    data = _tarball({'word_aliased.ckpt.index': b'i', 'word_aliased.ckpt.data-00000-of-00001': b'd',
                     'word_network_aliased.pckl': b'p'}, prefix='network_files/')
    server.files['/mirror/audio-copy.tgz'] = data
    fetch.fetch('word_aliased', url=server.url + '/mirror/audio-copy.tgz', progress=False)
    assert fetch.local_checkpoint('word_aliased') == str(tmp_path / 'network_files' / 'word_aliased.ckpt')


def test_the_progress_line_is_printed_once():
    stream = io.StringIO()
    bar = fetch._Progress('file.tar.gz', 2000000, True, stream=stream)
    bar.update(2000000)
    bar.update(2000000, final=True)
    text = stream.getvalue()
    assert text.count('100.0%') == 1 and text.endswith('\n')
    stream = io.StringIO()
    bar = fetch._Progress('file.tar.gz', 2000000, True, stream=stream)
    bar.update(1000000)
    bar.update(2000000, final=True)  # the last count was not shown yet: it is
    assert stream.getvalue().count('50.0%') == 1 and stream.getvalue().count('100.0%') == 1
