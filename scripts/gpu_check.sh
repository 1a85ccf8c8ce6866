#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build .venv-gpu (requirements-gpu.txt), print what audiogen
# sees, run the tests marked `gpu`, then train and generate briefly with both models on the
# first GPU (or the one CUDA_VISIBLE_DEVICES names) and print their speeds.
#
#   bash scripts/gpu_check.sh            (or: make gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

make venv-gpu
PY=.venv-gpu/bin/python
$PY -m audiogen.doctor
if ! $PY -c 'import sys, tensorflow as tf; sys.exit(not tf.config.list_physical_devices("GPU"))'
then
    echo "gpu_check: TensorFlow sees no GPU (driver for CUDA 12.3? CUDA_VISIBLE_DEVICES?)" >&2
    exit 1
fi

$PY -m pytest -q -m gpu tests

out=$(mktemp -d /tmp/audiogen-gpu-check.XXXXXX)
trap 'rm -rf "$out"' EXIT
now() { date +%s.%N; }
rate() { $PY -c "import sys; print(f'{float(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):,.0f}')" "$@"; }

echo "== SampleRNN (configs/samplernn-small.config.json, demo piano, batch 32, 200 steps)"
t0=$(now)
$PY train.py --config_file configs/samplernn-small.config.json --data_dir data/demo/audio \
    --sample_rate 16000 --batch_size 32 --num_epochs 1 --steps_per_epoch 200 \
    --generate false --logdir_root "$out/logdir" --id samplernn --verbose false \
    --set precision=mixed_float16
t1=$(now)
seq_len=$($PY -c 'import json; print(json.load(open("configs/samplernn-small.config.json"))["seq_len"])')
echo "training: $(rate $((200 * 32 * seq_len)) "$t0" "$t1") samples/s (startup and compilation included)"
t0=$(now)
$PY generate.py --checkpoint_path "$out/logdir/samplernn" --output_path "$out/piano.wav" \
    --num_seqs 4 --dur 5 --temperature 0.9
t1=$(now)
echo "generation: $(rate $((4 * 5 * 16000)) "$t0" "$t1") samples/s, 4 sequences (startup and compilation included)"

echo "== MusicVAE (configs/musicvae-2bar.config.json, demo tunes, 300 steps)"
t0=$(now)
$PY train.py --config_file configs/musicvae-2bar.config.json --logdir_root "$out/logdir" \
    --id musicvae --num_steps 300 --evaluate_interval 300 --verbose false \
    --set precision=mixed_float16
t1=$(now)
echo "training: $(rate 300 "$t0" "$t1") steps/s (startup, extraction and compilation included)"
t0=$(now)
$PY generate.py --checkpoint_path "$out/logdir/musicvae" --output_path "$out/melody.mid" \
    --num_seqs 256
t1=$(now)
echo "sampling: $(rate 256 "$t0" "$t1") melodies/s (startup and compilation included)"
echo "gpu_check: done"
