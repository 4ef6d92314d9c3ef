#!/bin/sh
# Pack the TensorFlow 2.17.1 GPU stack for a device machine that has a GPU and Python 3.12 but no
# TensorFlow and no network (this workplace's lent H200, whose image has CUDA 13, cuDNN 9 and a scipy
# that needs numpy 2): the wheels are fetched here, unpacked, trimmed to what a synthesis step loads,
# and written as xz-compressed tar parts small enough to travel one per device call (PART_SIZE plus
# the ~10 MB repository stay under the 64 MiB a call carries). bench/gpu_session.sh unpacks them.
#
#   sh bench/pack_gpu_stack.sh       # writes build/gNN/part.NN (+ manifest.sha256 in the last one)
#
# The parts live under build/ because that folder is in .gitignore: paths ignored there stay on a
# warm device machine between calls, while paths ignored only by .git/info/exclude are removed.
# Carry one part folder per call (carry=["build/g00"], then "build/g01", ...; each call takes ~7 s
# and the machine goes back after 30 s idle), then run bench/gpu_session.sh with the last one.
# 2026-11-29: 19 parts of 53 MiB (976 MiB from 3 GB unpacked), ~20 min of xz on 2 cores; unpacking
# them takes 43 s on 2 cores (checked here with DEADLINE=0, which skips every stage).
#
# Trimmed: TF's C++ headers; cuDNN's RNN/attention sub-libraries (libcudnn_adv_*: loaded only for RNNs);
# cuSOLVER and cuSPARSE are replaced by empty libraries with their sonames, because TensorFlow refuses
# the GPU unless it can dlopen them, but a synthesis step calls neither.
set -eu
PART_SIZE=${PART_SIZE:-53M}
WHEELS=${WHEELS:-.whl}
SITE=$(mktemp -d)
mkdir -p "$WHEELS"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$WHEELS" \
    tensorflow==2.17.1 nvidia-cudnn-cu12==8.9.7.29 nvidia-cublas-cu12==12.3.4.1 \
    nvidia-cufft-cu12==11.0.12.1 nvidia-cuda-runtime-cu12==12.3.101 nvidia-cuda-nvcc-cu12==12.3.107 \
    numpy==1.26.4 keras==3.6.0 namex==0.1.0 optree==0.20.0 ml-dtypes==0.4.1 protobuf==4.25.9 \
    gast==0.7.0 astunparse==1.6.3 google-pasta==0.2.0 termcolor==3.3.0 tf-slim==1.1.0 tf_keras==2.17.0 \
    tensorboard==2.17.1 scipy==1.14.1
for w in "$WHEELS"/*.whl; do unzip -q -o "$w" -d "$SITE"; done
cd "$SITE"
rm -rf tensorflow/include nvidia/cudnn/lib/libcudnn_adv_* nvidia/*/include nvidia/cublas/lib/libnvblas* \
    nvidia/cufft/lib/libcufftw* nvidia/cuda_nvcc/nvvm/lib64 nvidia/cuda_nvcc/nvvm/bin \
    nvidia/cuda_nvcc/bin/nvcc nvidia/cuda_nvcc/bin/cicc
mkdir -p nvidia/cusolver/lib nvidia/cusparse/lib
echo 'void model_metamers_gpu_stub(void) {}' > stub.c
gcc -shared -fPIC -Wl,-soname,libcusolver.so.11 -o nvidia/cusolver/lib/libcusolver.so.11 stub.c
gcc -shared -fPIC -Wl,-soname,libcusparse.so.12 -o nvidia/cusparse/lib/libcusparse.so.12 stub.c
rm stub.c
cd - >/dev/null
rm -rf build/g[0-9][0-9] && mkdir -p build/gpu_parts
tar -C "$SITE" -cf - . | xz -6 -T0 | split -b "$PART_SIZE" -d -a 2 - build/gpu_parts/part.
rm -rf "$SITE"
(cd build/gpu_parts && sha256sum part.* > manifest.sha256)
for part in build/gpu_parts/part.*; do
    n=${part##*.}; mkdir -p build/g$n && mv "$part" build/g$n/
done
mv build/gpu_parts/manifest.sha256 build/g$n/ && rmdir build/gpu_parts
ls -l build/g*
