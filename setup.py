"""model_metamers for TensorFlow 2, with the tfcochleagram front end."""

from setuptools import find_packages, setup

setup(
    name='model_metamers',
    version='0.1.0',
    description=('TF2/Keras reproduction of Feather et al. (NeurIPS 2019), "Metamers of neural '
                 'networks reveal divergence from human perceptual systems"'),
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.9,<3.13',
    packages=find_packages(include=['model_metamers', 'model_metamers.*',
                                    'tfcochleagram', 'tfcochleagram.*']),
    package_data={'model_metamers': ['data/*.json', 'data/*.wav', 'data/*.png', 'data/*.jpg'],
                  'model_metamers.experiment_html': ['index.html', 'experiment.js', 'experiment.css']},
    py_modules=['run_generation'],
    install_requires=[
        # tensorflow-io's native ops are built against TF 2.17 only.
        'tensorflow==2.17.1',
        'tensorflow-io==0.37.1',
        'keras==3.6.0',
        'tf-slim==1.1.0',
        'numpy>=1.23,<2',
        'scipy>=1.10',
        'h5py>=3.8',
        'absl-py>=1.4',
    ],
    extras_require={
        # tf-keras provides the legacy layers tf_slim's batch_norm needs under TF 2.17;
        # only the tests' slim reference graphs use it.
        # python_speech_features: the reference the DeepSpeech 0.4.1 front end is tested against.
        # selenium drives Debian's chromium (make test installs it) through the web experiment;
        # websocket-client (a selenium dependency) carries the Firefox test's WebDriver BiDi.
        'test': ['pytest>=7', 'tf-keras==2.17.0', 'matplotlib>=3.7',
                 'python_speech_features==0.6', 'selenium>=4.10', 'websocket-client>=1.0',
                 # tests/test_mutation_patch.py reads the patch tools/mutation_patch.py writes with it
                 'whatthepatch>=1.0'],
        'plots': ['matplotlib>=3.7'],
        # `make mutation` (not part of `make test`); 2.x takes its settings on the command line.
        # whatthepatch: mutmut's --use-patch-file (make mutation MUTATION_ONLY=...).
        'mutation': ['mutmut==2.5.1', 'whatthepatch>=1.0'],
    },
    entry_points={
        'console_scripts': [
            'model-metamers-generate=run_generation:entry_point',
        ],
    },
)
