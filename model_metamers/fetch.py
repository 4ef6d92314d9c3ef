"""Download the published checkpoints into ``checkpoints/``: resumable, verified, safely unpacked.

Usage::

    python -m model_metamers.fetch --network=vgg_19 [--dest=DIR] [--url=MIRROR]
    python -m model_metamers.fetch --all

Each network maps to a public tarball (TF-Slim's ImageNet checkpoints, the
original project's audio models, DeepSpeech 0.5.1) or a single public file
(VGGish's V1 checkpoint, plus its PCA parameters). The download goes to
``<dest>/.downloads/<archive>.part`` and resumes with an HTTP ``Range`` request
after an interruption (also across runs). The finished archive is verified
(sha256 when a digest is known, else a full read of the tar, which checks the
gzip CRC, plus the expected member names), unpacked without letting any
member escape ``dest`` (no absolute paths, no ``..``, no links or devices),
recorded in ``<dest>/.fetched/<archive>.json`` and deleted. A second run finds
the record and does nothing.
"""

import collections
import fnmatch
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib

from absl import flags

if __name__ == '__main__':  # as a command: quiet TF's C++ start-up lines before the imports below load it
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from model_metamers.errors import UserError  # noqa: E402
from model_metamers.cli import unexpected_arguments  # noqa: E402
from model_metamers.fileio import write_text  # noqa: E402
from model_metamers.networks.weights import checkpoints  # noqa: E402
from model_metamers.networks.weights.public_checkpoints import EXTRA_FILES, PUBLIC_CHECKPOINTS  # noqa: E402

_TF_MODELS = 'http://download.tensorflow.org/models/'
AUDIO_URL = ('http://mcdermottlab.mit.edu/jfeather/model_metamers/assets/'
             'metamers_audio_models_network_files.tar.gz')

# members: basename patterns that must each match a file of the archive (any folder).
# checkpoint: the checkpoint's basename (a V1 file, or a V2 prefix); None: the
# folder of the archive that holds TF's ``checkpoint`` index file.
Source = collections.namedtuple('Source', 'url members checkpoint sha256')

SOURCES = {
    'vgg_19': Source(_TF_MODELS + 'vgg_19_2016_08_28.tar.gz', ('vgg_19.ckpt',),
                     'vgg_19.ckpt', None),
    'inception_v3': Source(_TF_MODELS + 'inception_v3_2016_08_28.tar.gz', ('inception_v3.ckpt',),
                           'inception_v3.ckpt', None),
    'resnet_v2_101': Source(_TF_MODELS + 'resnet_v2_101_2017_04_14.tar.gz',
                            ('resnet_v2_101.ckpt',), 'resnet_v2_101.ckpt', None),
    # Names from the original build_word_network_*.py scripts (the tarball is not
    # inspectable offline): the checkpoint prefixes and the network pickles.
    'word_aliased': Source(AUDIO_URL, ('word_aliased.ckpt*', 'word_network_aliased.pckl'),
                           'word_aliased.ckpt', None),
    'word_reduced_aliasing': Source(AUDIO_URL, ('word_reduced_aliasing.ckpt*',
                                                'word_network_reduced_aliasing.pckl'),
                                    'word_reduced_aliasing.ckpt', None),
    # A single V1 checkpoint file, not an archive.
    'vggish': Source(PUBLIC_CHECKPOINTS['vggish'], ('vggish_model.ckpt',), 'vggish_model.ckpt', None),
    # A folder with a V2 checkpoint whose step number is not known in advance.
    'deepspeech': Source(PUBLIC_CHECKPOINTS['deepspeech'], ('checkpoint', '*.index'), None, None),
}

ARCHIVE_SUFFIXES = ('.tar.gz', '.tgz', '.tar', '.tar.bz2', '.tar.xz')

_CHUNK = 1 << 20


class FetchError(UserError, RuntimeError):
    """A download, verification or unpacking step that failed (one-line message with the fix)."""


def _source(network):
    if network not in SOURCES:
        raise FetchError('no public download is known for network %r; known: %s'
                         % (network, ', '.join(sorted(SOURCES))))
    return SOURCES[network]


def _archive_name(url):
    name = os.path.basename(url.split('?', 1)[0].rstrip('/'))
    if not name or name in ('.', '..'):
        raise FetchError('cannot tell the archive name from the URL %s: give a URL ending in '
                         'the file name (e.g. .../vgg_19_2016_08_28.tar.gz)' % url)
    return name


# --------------------------------------------------------------------- download
class _Progress:
    """One self-overwriting stderr line, at most every 0.5 s."""

    def __init__(self, label, total, enabled, stream=None):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = None

    def update(self, done, final=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < 0.5:
            return
        self._last = now
        if self.total:
            line = '%s  %5.1f%%  %.1f / %.1f MB' % (self.label, 100.0 * done / self.total,
                                                   done / 1e6, self.total / 1e6)
        else:
            line = '%s  %.1f MB' % (self.label, done / 1e6)
        # The final call only ends the line when it already shows the final count (a log file
        # keeps every '\r' update, so the same line would read twice).
        text = '' if final and line == self._shown else '\r' + line
        self._shown = line
        self.stream.write(text + ('\n' if final else ''))
        self.stream.flush()


def _content_range_start_total(header):
    # 'bytes 100-199/200' -> (100, 200); total may be '*'
    try:
        unit, rest = header.split(' ', 1)
        span, total = rest.split('/', 1)
        start = int(span.split('-', 1)[0])
        return start, (None if total.strip() == '*' else int(total))
    except (ValueError, AttributeError):
        return None, None


def download(url, path, retries=3, progress=True, timeout=60):
    """Download ``url`` to ``path`` through ``path + '.part'``, resuming with HTTP Range.

    A partial ``.part`` left by an earlier run is continued. A connection cut
    short is retried ``retries`` times, each time from the bytes already on
    disk. Servers that ignore Range (status 200) make it start over.
    Raises :class:`FetchError` (one line) when it cannot finish.
    """
    part = path + '.part'
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    label = os.path.basename(path)
    last_error = None
    for attempt in range(retries + 1):
        have = os.path.getsize(part) if os.path.exists(part) else 0
        headers = {'Range': 'bytes=%d-' % have} if have else {}
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = getattr(response, 'status', 200)
                total = None
                if have and status == 206:
                    start, total = _content_range_start_total(response.headers.get('Content-Range'))
                    if start != have:  # a range we did not ask for: start over
                        have, mode = 0, 'wb'
                        response.close()
                        os.remove(part)
                        continue
                    mode = 'ab'
                else:
                    have, mode = 0, 'wb'
                    length = response.headers.get('Content-Length')
                    total = int(length) if length and length.isdigit() else None
                bar = _Progress(label, total, progress)
                done = have
                with open(part, mode) as f:
                    while True:
                        chunk = response.read(_CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        done += len(chunk)
                        bar.update(done)
                bar.update(done, final=True)
                if total is not None and done != total:
                    raise http.client.IncompleteRead(b'', total - done)
            os.replace(part, path)
            return path
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:
                # Nothing left to send: the .part is complete (verification decides).
                os.replace(part, path)
                return path
            raise FetchError('download of %s failed: HTTP %d %s; check the URL (override it with '
                             '--url)' % (url, e.code, e.reason)) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            last_error = e
            if attempt < retries:
                time.sleep(min(2.0 ** attempt, 10.0) * 0.1)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    reason = getattr(last_error, 'reason', None) or last_error
    raise FetchError('download of %s stopped after %d attempts at %d bytes (%s: %s); run the same '
                     'command again to resume' % (url, retries + 1, have,
                                                  type(last_error).__name__, reason))


# ------------------------------------------------------------------- verify/untar
def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_member_path(member):
    """The member's relative path, or raise if it could land outside the destination."""
    name = member.name.replace('\\', '/')
    parts = [p for p in name.split('/') if p not in ('', '.')]
    if name.startswith('/') or (len(name) > 1 and name[1] == ':') or '..' in parts or not parts:
        raise FetchError('archive member %r would be written outside the destination; the '
                         'archive is not trustworthy, nothing was unpacked' % member.name)
    if not (member.isfile() or member.isdir()):
        raise FetchError('archive member %r is a link or special file; the archive is not '
                         'trustworthy, nothing was unpacked' % member.name)
    return os.path.join(*parts)


def verify_archive(path, patterns, sha256=None):
    """Check an archive before unpacking; returns the list of its regular-file members.

    sha256 (when given) must match; every member must be readable to the end
    (gzip CRC), safe (see :func:`_safe_member_path`), and every pattern in
    ``patterns`` must match the basename of some file.
    """
    if sha256 and sha256_of(path).lower() != sha256.lower():
        raise FetchError('%s has the wrong sha256 (expected %s); the download is corrupt or not '
                         'the published file: fetch again' % (path, sha256))
    files = []
    try:
        with tarfile.open(path, 'r:*') as tar:
            for member in tar:
                rel = _safe_member_path(member)
                if member.isfile():
                    stream = tar.extractfile(member)
                    while stream.read(_CHUNK):
                        pass
                    files.append(rel)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise FetchError('%s is not a valid tar archive (%s); the download is corrupt: fetch '
                         'again' % (path, str(e) or type(e).__name__)) from None
    names = [os.path.basename(f) for f in files]
    missing = [p for p in patterns if not fnmatch.filter(names, p)]
    if missing:
        raise FetchError('%s lacks the expected member(s) %s; is the URL right? (it holds: %s)'
                         % (path, ', '.join(missing), ', '.join(sorted(names)[:10])))
    return files


def is_archive(url):
    return _archive_name(url).endswith(ARCHIVE_SUFFIXES)


def verify_file(path, sha256=None):
    """Check a single downloaded file: sha256 when known, else that it loads as what it claims."""
    if sha256 and sha256_of(path).lower() != sha256.lower():
        raise FetchError('%s has the wrong sha256 (expected %s); the download is corrupt or not '
                         'the published file: fetch again' % (path, sha256))
    name = os.path.basename(path)
    if name.endswith('.npz'):
        import numpy as np
        try:
            with np.load(path) as data:
                list(data.keys())
        except (OSError, ValueError, zlib.error) as e:
            raise FetchError('%s is not a readable .npz file (%s): fetch again' % (path, e)) from None
    elif name.endswith(('.ckpt', '.part-ckpt')) and not checkpoints.is_v1_checkpoint_file(path):
        raise FetchError('%s is not a readable TF checkpoint; the download is corrupt: fetch again'
                         % path)


def extract_archive(path, dest):
    """Unpack the regular files of a verified archive into ``dest`` (each file moved atomically)."""
    os.makedirs(dest, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.extract-', dir=dest)
    written = []
    try:
        with tarfile.open(path, 'r:*') as tar:
            for member in tar:
                rel = _safe_member_path(member)
                if not member.isfile():
                    continue
                tmp = os.path.join(staging, rel)
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                with tar.extractfile(member) as src, open(tmp, 'wb') as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                written.append(rel)
        for rel in written:
            final = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(os.path.join(staging, rel), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [os.path.join(dest, rel) for rel in written]


# ------------------------------------------------------------------------ fetch
def _manifest_path(dest, archive):
    return os.path.join(dest, '.fetched', archive + '.json')


def _write_json_atomic(path, data):
    write_text(path, json.dumps(data, indent=1))


def _present(source, dest, archive):
    """Paths of the fetched files if the archive was already unpacked into ``dest``, else None."""
    record = _manifest_path(dest, archive)
    if os.path.exists(record):
        with open(record) as f:
            files = json.load(f).get('files', [])
        paths = [os.path.join(dest, rel) for rel in files]
        names = [os.path.basename(p) for p in paths]
        if all(os.path.exists(p) for p in paths) and all(
                fnmatch.filter(names, pattern) for pattern in source.members):
            return paths
    # Files put there by hand: every pattern matched directly in dest.
    if os.path.isdir(dest):
        here = os.listdir(dest)
        if all(fnmatch.filter(here, pattern) for pattern in source.members):
            return [os.path.join(dest, n) for p in source.members for n in fnmatch.filter(here, p)]
    return None


def _checkpoint_in(paths, source):
    if source.checkpoint is None:
        for p in paths:
            if os.path.basename(p) == 'checkpoint':
                return os.path.dirname(p)
        return None
    for p in paths:
        name = os.path.basename(p)
        if name == source.checkpoint or name.startswith(source.checkpoint + '.'):
            return os.path.join(os.path.dirname(p), source.checkpoint)
    return None


def check_dest(dest):
    """Refuse a ``--dest`` that is a file (or under one) before anything is downloaded."""
    folder = dest
    while folder and not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if folder and os.path.exists(folder) and not os.path.isdir(folder):
        raise FetchError('--dest=%s: %s is a file, not a folder; give a folder (default: %s)'
                         % (dest, folder, checkpoints.checkpoint_dir()))


def _describe_file(path):
    """A few words on what a file is, from its first bytes (for messages)."""
    with open(path, 'rb') as f:
        head = f.read(16)
    kinds = ((b'RIFF', 'a WAV file'), (b'\x89HDF', 'an HDF5 file'), (b'\x1f\x8b', 'gzip data'),
             (b'PK', 'a zip file'), (b'<', 'an HTML/XML page'), (b'\x89PNG', 'a PNG image'),
             (b'fLaC', 'a FLAC file'), (b'ID3', 'an MP3 file'))
    for magic, kind in kinds:
        if head.startswith(magic):
            return 'it is %s of %d bytes' % (kind, os.path.getsize(path))
    return 'it starts with %r, %d bytes' % (head[:8], os.path.getsize(path))


def fetch(network, dest=None, url=None, sha256=None, retries=3, progress=True,
          keep_archive=False):
    """Fetch the checkpoint of ``network`` into ``dest`` (default ``checkpoints.checkpoint_dir()``).

    Returns ``{'network', 'archive', 'files', 'checkpoint', 'downloaded'}``;
    ``checkpoint`` is what ``build(network, weights=...)`` takes. Idempotent.
    """
    source = _source(network)
    dest = os.path.abspath(dest or checkpoints.checkpoint_dir())
    url = url or source.url
    archive = _archive_name(url)
    sha256 = sha256 or source.sha256
    check_dest(dest)
    # Recorded under the published name even when a mirror served it: local_checkpoint
    # (what --weights=auto asks) looks the record up by that name.
    record = _archive_name(source.url)
    paths = _present(source, dest, record)
    downloaded = False
    if paths is None:
        archive_path = os.path.join(dest, '.downloads', archive)
        if not os.path.exists(archive_path):
            download(url, archive_path, retries=retries, progress=progress)
            downloaded = True
        expect_archive = is_archive(source.url)
        try:
            # What was downloaded decides, not the URL's name: a mirror may serve anything.
            if expect_archive:
                if not tarfile.is_tarfile(archive_path):
                    raise FetchError('%s from %s is not a tar archive (%s); --url must give a copy '
                                     'of %s' % (archive, url, _describe_file(archive_path), record))
                verify_archive(archive_path, source.members, sha256)
            else:
                verify_file(archive_path, sha256)
                if (source.checkpoint and source.checkpoint.endswith('.ckpt')
                        and not checkpoints.is_v1_checkpoint_file(archive_path)):
                    raise FetchError('%s from %s is not a readable TF checkpoint (%s); --url must '
                                     'give a copy of %s' % (archive, url, _describe_file(archive_path),
                                                            record))
        except FetchError:
            os.remove(archive_path)  # a bad download must not block the next attempt
            raise
        if expect_archive:
            paths = extract_archive(archive_path, dest)
            if not keep_archive:
                os.remove(archive_path)
        else:
            # Stored under the published name, where local_checkpoint finds it.
            paths = [os.path.join(dest, record)]
            os.replace(archive_path, paths[0])
        _write_json_atomic(_manifest_path(dest, record),
                           {'url': url, 'files': [os.path.relpath(p, dest) for p in paths]})
    for extra in EXTRA_FILES.get(network, []) if url == source.url else []:
        target = os.path.join(dest, _archive_name(extra))
        if not os.path.exists(target):
            tmp = os.path.join(dest, '.downloads', _archive_name(extra))
            download(extra, tmp, retries=retries, progress=progress)
            verify_file(tmp)
            os.replace(tmp, target)
            downloaded = True
        paths = list(paths) + [target]
    return {'network': network, 'archive': archive, 'files': paths, 'downloaded': downloaded,
            'checkpoint': _checkpoint_in(paths, source)}


def local_checkpoint(network, dest=None):
    """The original-format checkpoint of ``network`` already in ``dest`` (fetched or put by hand), else None."""
    if network not in SOURCES:
        return None
    source = SOURCES[network]
    dest = os.path.abspath(dest or checkpoints.checkpoint_dir())
    paths = _present(source, dest, _archive_name(source.url))
    return _checkpoint_in(paths, source) if paths else None


def fetch_all(dest=None, **kwargs):
    """Fetch every known network; an archive shared by several networks is downloaded once."""
    return [fetch(name, dest=dest, **kwargs) for name in sorted(SOURCES)]


# -------------------------------------------------------------------------- CLI
def _flags():
    fv = flags.FlagValues()
    flags.DEFINE_string('network', None, 'network whose checkpoint to fetch (%s)'
                        % ', '.join(sorted(SOURCES)), flag_values=fv)
    flags.DEFINE_boolean('all', False, 'fetch every known network', flag_values=fv)
    flags.DEFINE_string('dest', None, 'destination folder (default: the checkpoints/ folder, '
                        'or $MODEL_METAMERS_CHECKPOINT_DIR)', flag_values=fv)
    flags.DEFINE_string('url', None, 'download from this URL instead (a mirror); with --network',
                        flag_values=fv)
    flags.DEFINE_string('sha256', None, 'expected sha256 of the archive', flag_values=fv)
    flags.DEFINE_integer('retries', 3, 'retries after a connection is cut', flag_values=fv)
    flags.DEFINE_boolean('keep_archive', False, 'keep the downloaded tarball', flag_values=fv)
    flags.DEFINE_boolean('progress', True, 'show download progress', flag_values=fv)
    return fv


def main(argv=None):
    """Command line entry point; returns the exit status (0 ok, 1 failed, 2 bad arguments)."""
    argv = list(sys.argv if argv is None else argv)
    fv = _flags()
    if any(a in ('-h', '--help', '-help') for a in argv[1:]):
        print('python -m model_metamers.fetch --network=NAME|--all [--dest=DIR] [--url=URL]\n')
        print(fv.get_help())
        return 0
    try:
        rest = fv(argv)
    except flags.Error as e:
        sys.stderr.write('error: %s\n' % e)
        return 2
    if unexpected_arguments(rest, example='--network=vgg_19', status=2):
        return 2
    if bool(fv.network) == bool(fv.all):
        sys.stderr.write('error: give exactly one of --network=NAME or --all\n')
        return 2
    if fv.all and (fv.url or fv.sha256):
        sys.stderr.write('error: --url and --sha256 apply to one archive: use them with --network\n')
        return 2
    kwargs = dict(dest=fv.dest, retries=fv.retries, progress=fv.progress,
                  keep_archive=fv.keep_archive)
    try:
        if fv.all:
            results = fetch_all(**kwargs)
        else:
            results = [fetch(fv.network, url=fv.url, sha256=fv.sha256, **kwargs)]
    except FetchError as e:
        sys.stderr.write('error: %s\n' % e)
        return 1
    except OSError as e:  # a folder that cannot be written, a full disk
        sys.stderr.write('error: %s: %s; check --dest\n' % (e.strerror or e, e.filename or fv.dest))
        return 1
    auto_dir = os.path.abspath(checkpoints.checkpoint_dir())
    for r in results:
        print('%s: %s (%s)' % (r['network'], r['checkpoint'] or ', '.join(r['files']),
                               'downloaded' if r['downloaded'] else 'already present'))
    if fv.dest and os.path.abspath(fv.dest) != auto_dir:
        print('note: --weights=auto looks in %s (or $MODEL_METAMERS_CHECKPOINT_DIR), not %s; pass '
              '--weights=<the path above> or set MODEL_METAMERS_CHECKPOINT_DIR=%s'
              % (auto_dir, os.path.abspath(fv.dest), os.path.abspath(fv.dest)))
    return 0


if __name__ == '__main__':
    from model_metamers import cli

    cli.run_plain(main)
