#!/usr/bin/env bash
# Installs what vislaw needs, inside the project only: a Python venv (.venv) with
# torch==2.13.0 (the libtorch that tch 0.26 links against) and the Python packages of the
# benchmarks, the notebook test and the parity tests, then links .venv/torch for
# .cargo/config.toml. As root on Debian it also installs the system tools the tests use:
# ffmpeg (video decoding for `vislaw encode`) and a single-node Slurm (slurmctld, slurmd,
# slurm-client, munge) for the cluster tests.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
debs=()
command -v ffmpeg >/dev/null 2>&1 || debs+=(ffmpeg)
command -v sbatch >/dev/null 2>&1 || debs+=(slurmctld slurmd slurm-client munge)
if [ ${#debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${debs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
  else
    echo "setup: not installed (needs root and apt-get): ${debs[*]}; the tests that need them will fail" >&2
  fi
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing requirements.txt into .venv (torch==2.13.0 is a large download)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi
torch_dir=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
ln -sfn "$torch_dir" .venv/torch
