"""The exceptions that mean "bad input from the user": CLIs print them as one line."""

from model_metamers.audio import AudioLoadError
from model_metamers.fileio import DiskFullError
from model_metamers.generation import GenerationError
from model_metamers.networks import UnknownLayerError, UnknownNetworkError
from model_metamers.networks.checkpoints import CheckpointError
from model_metamers.published_nulls import PublishedNullError
from model_metamers.results import ResultFileError
from model_metamers.safe_pickle import UnsafePickleError
from model_metamers.synthesis import SynthesisError


def _optional(module, name):
    try:
        return [getattr(__import__(module, fromlist=[name]), name)]
    except (ImportError, AttributeError):
        return []


USER_ERRORS = tuple([AudioLoadError, CheckpointError, GenerationError, SynthesisError,
                     UnknownLayerError, UnknownNetworkError, FileNotFoundError, PublishedNullError,
                     UnsafePickleError, DiskFullError, ResultFileError]
                    + _optional('model_metamers.images', 'ImageLoadError'))
