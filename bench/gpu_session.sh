#!/bin/bash
# The GPU benchmark on a lent device machine whose Python has no TensorFlow.
#
# The TensorFlow 2.17.1 GPU stack (TF, cuDNN 8.9, cuBLAS/cuFFT 12, ptxas 12.3, numpy 1.26, keras 3.6,
# tf-slim, tf-keras, scipy 1.14) travels as xz-compressed tar parts in build/gNN/ (made and carried as
# bench/pack_gpu_stack.sh says), unpacked once to /tmp/site. Stages run in order of importance and each starts only when
# the time left (DEADLINE seconds from the start, default 540) allows it; results go to $OUT.
#
#   bash bench/gpu_session.sh            # on the device machine, from the repository root
set -u
DEADLINE=${DEADLINE:-540}
OUT=${OUT:-/tmp/gpu_out}
SITE=/tmp/site
mkdir -p "$OUT"

if [ ! -f $SITE/.ok ]; then
    manifest=$(ls build/g*/manifest.sha256 2>/dev/null | tail -n 1)
    [ -n "$manifest" ] && (cd build && sed 's#  part\.\([0-9]*\)$#  g\1/part.\1#' "../$manifest" | sha256sum -c --quiet) ||
        { echo "GPU stack parts missing or damaged: carry every build/gNN folder (bench/pack_gpu_stack.sh)"; ls build; exit 3; }
    mkdir -p $SITE && cat build/g*/part.* | xz -d -T16 | tar -C $SITE -xf - && touch $SITE/.ok || exit 4
    echo "unpacked in ${SECONDS}s"
fi
export PYTHONPATH=$SITE PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=1
export XLA_FLAGS=--xla_gpu_cuda_data_dir=$SITE/nvidia/cuda_nvcc
export PATH=$SITE/nvidia/cuda_nvcc/bin:$PATH

left() { echo $((DEADLINE - SECONDS)); }
stage() {  # stage NAME MIN_SECONDS_LEFT COMMAND...: run COMMAND under the time left, or skip it
    name=$1; need=$2; shift 2
    if [ "$(left)" -lt "$need" ]; then echo "== $name: skipped, $(left)s left"; return; fi
    echo "== $name ($(left)s left)"
    timeout "$(left)" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v "^WARNING\|^I0000\|^W0000"
}

stage sanity 60 python3 - <<'EOF'
import numpy as np
import tensorflow as tf
import scipy.signal  # noqa: F401
print('tensorflow', tf.__version__, 'numpy', np.__version__, tf.config.list_physical_devices('GPU'))
info = tf.sysconfig.get_build_info()
print('built for CUDA', info.get('cuda_version'), 'cuDNN', info.get('cudnn_version'))
x = tf.random.normal([4, 64, 64, 8])
print('conv', float(tf.reduce_sum(tf.nn.conv2d(x, tf.random.normal([3, 3, 8, 16]), 1, 'SAME'))))
print('fft', float(tf.reduce_sum(tf.abs(tf.signal.fft(tf.complex(x[..., 0], 0.0))))))
print('xla', float(tf.function(lambda a: tf.reduce_sum(tf.abs(a)), jit_compile=True)(x)))
EOF

# Fidelity first: the cochleagram against the original's arrays, the custom layers against TF's ops.
stage tests_gpu 120 python3 -m pytest -q --tb=line -p no:cacheprovider tests/test_tfcochleagram.py \
    tests/test_layers.py tests/test_precision.py
B="python3 bench/bench_synthesis.py --allocators=system --block=20 --repeats=5 --json=$OUT/gpu.json"
# What the 2026-11-29 lease did not reach first (it measured word_reduced_aliasing at batch 1 and 8 and
# word_aliased at batch 1: bench/results/gpu_h200_b1_b8_v1.json), then that again.
# The banded cochleagram envelopes (2026-11-30, measured on CPU only): do they change the batch-8
# throughput on a GPU, where the front end is bound by memory traffic? TF2 engine alone, both ways.
stage bench_envelopes 90 $B --networks=word_reduced_aliasing --layers=deep --batches=1,8 --xla=off \
    --baseline=off --envelope_impls=banded,full
stage bench_others 120 $B --networks=word_aliased,vgg_19,resnet_v2_101,inception_v3 --layers=deep --batches=1,8 --xla=off
stage bench_xla 60 $B --networks=word_reduced_aliasing --layers=deep --batches=1,8 --xla=on --baseline=off
stage bench_reduced 150 $B --networks=word_reduced_aliasing --layers=shallow,deep --batches=1,8 --xla=off
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
echo "done in ${SECONDS}s"
