#!/usr/bin/env bash
# Builds the NEON kernels for arm64 and checks their f16/bf16 conversion and decode dots against the scalar table,
# under user-mode emulation (no arm64 machine needed): apt-get install -y gcc-aarch64-linux-gnu qemu-user
set -euo pipefail
cd "$(dirname "$0")/.."
S=native/src
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O3 -std=gnu11 -fno-strict-aliasing -ffp-contract=off -fopenmp-simd -Wall -Wno-unused-function \
  -I"$S" native/check/neon_half.c "$S/kernels_neon.c" "$S/kernels_generic.c" -o "$out/neon_half" -lm -static
qemu-aarch64 "$out/neon_half"
aarch64-linux-gnu-gcc -O3 -std=gnu11 -fno-strict-aliasing -ffp-contract=off -fopenmp-simd -Wall -Wno-unused-function \
  -I"$S" native/check/neon_kquant.c "$S/kernels_quant_neon.c" "$S/kernels_quant_generic.c" -o "$out/neon_kquant" -lm -static
qemu-aarch64 "$out/neon_kquant"
