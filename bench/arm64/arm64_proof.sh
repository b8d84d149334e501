#!/usr/bin/env bash
# arm64 proof: the device side on Debian arm64, as on Raspberry Pi OS (Bookworm: python3.11 and
# apt's numpy 1.24; Trixie: python3.13 and apt's numpy 2.x), under qemu user-mode emulation,
# reads all 10,000 MNIST test digits and the handwriting_dev scans with the shipped model and
# must predict exactly what it predicts on x86_64. Writes docs/ARM64.md; exits 1 if any
# prediction differs on any suite.
#
#   bench/arm64/arm64_proof.sh            (as root the first time: it apt-installs qemu-user-static
#                                          and debootstrap if they are missing)
#
# Takes about 5 minutes a suite on 2 cores once each rootfs (~250 MB) and its wheels are cached
# in .build/arm64/SUITE/ (first run: + ~1 minute of downloads each). Not part of `make test`.
#
# Environment: SUITES ("bookworm trixie"), MNIST_DATA_DIR, SCANS_DIR (handwriting_dev;
# SCANS_DIR= skips it), X86_PYTHON, QEMU_CPU (cortex-a72 = Pi 4, the default; cortex-a76 = Pi 5),
# DEBIAN_MIRROR, ARM64_DOC.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$REPO/.build/arm64
SNAPSHOT=$BUILD/snapshot
OUT=$BUILD/out
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITES=${SUITES:-bookworm trixie}
MNIST=${MNIST_DATA_DIR:-$REPO/../shared/data/mnist}
SCANS=${SCANS_DIR-$REPO/../shared/data/handwriting_dev}
X86_PYTHON=${X86_PYTHON:-$REPO/.venv/bin/python}
CPU=${QEMU_CPU:-cortex-a72}
DOC=${ARM64_DOC-$REPO/docs/ARM64.md}
# What the device side's runtime path needs on the Pi (numpy comes from apt, not from here).
# The same pins as pyproject.toml's device extra: opencv 4.11 accepts numpy 1.x and 2.x alike.
WHEEL_REQUIREMENTS=(ai-edge-litert==2.3.0 opencv-python-headless==4.11.0.86)

die() {
    echo "arm64_proof: error: $*" >&2
    exit 1
}
step() { echo "==> $*"; }

python_of() { # the suite's python3 (as Raspberry Pi OS has it)
    case "$1" in
        bookworm) echo python3.11 ;;
        trixie) echo python3.13 ;;
        *) die "suite $1: use bookworm or trixie" ;;
    esac
}

need_tools() {
    local missing=()
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    ((${#missing[@]} == 0)) && return 0
    if ((EUID == 0)) && command -v apt-get >/dev/null; then
        step "installing ${missing[*]}"
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        die "missing ${missing[*]}: sudo apt-get install ${missing[*]}"
    fi
}

make_rootfs() { # suite rootfs
    local suite=$1 rootfs=$2 python
    [[ -f $rootfs/.complete ]] && return 0
    ((EUID == 0)) || die "building the arm64 rootfs needs root (debootstrap); run once with sudo"
    python=$(python_of "$suite")
    step "Debian $suite arm64 rootfs in $rootfs"
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    # --foreign: only download and unpack; the second stage would need to run arm64 programs.
    debootstrap --arch arm64 --foreign --variant=minbase --include="$python,python3-numpy" \
        "$suite" "$rootfs" "$MIRROR" >"$rootfs.debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $rootfs.debootstrap.log"
    # The first stage unpacked only the essential packages; unpack the rest (python, numpy and
    # their libraries) the same way. No maintainer scripts run, so do the one that matters:
    # the BLAS/LAPACK alternatives numpy links against.
    local deb
    for deb in "$rootfs"/var/cache/apt/archives/*.deb; do
        dpkg-deb -x "$deb" "$rootfs"
    done
    ln -sf blas/libblas.so.3 "$rootfs/usr/lib/aarch64-linux-gnu/libblas.so.3"
    ln -sf lapack/liblapack.so.3 "$rootfs/usr/lib/aarch64-linux-gnu/liblapack.so.3"
    touch "$rootfs/.complete"
}

apt_numpy() { # rootfs → the version of python3-numpy that apt put there, e.g. 1.24.2
    local deb
    deb=$(find "$1/var/cache/apt/archives" -name 'python3-numpy_*_arm64.deb' | head -n 1)
    [[ -n $deb ]] || die "no python3-numpy package in $1"
    dpkg-deb -f "$deb" Version | sed -E 's/^[0-9]+://; s/[-+~].*$//'
}

write_cpuinfo() { # rootfs: qemu -L finds the emulated Pi's cpuinfo there (see pi_cpuinfo.sh)
    QEMU_CPU=$CPU "$REPO/bench/arm64/pi_cpuinfo.sh" >"$1/proc/cpuinfo"
}

install_wheels() { # suite rootfs site-packages
    local suite=$1 rootfs=$2 site=$3 python version numpy glibc stamp
    python=$(python_of "$suite")
    version=${python#python}
    numpy=$(apt_numpy "$rootfs")
    stamp="${WHEEL_REQUIREMENTS[*]} numpy==$numpy"
    [[ -f $site/.requirements && $(cat "$site/.requirements") == "$stamp" ]] && return 0
    step "aarch64 wheels for $suite (Python $version, apt's numpy $numpy): ${WHEEL_REQUIREMENTS[*]}"
    local platforms=() v wheels_dir=$site.wheels
    # Every manylinux tag up to the suite's glibc (2.36 on bookworm, 2.41 on trixie) fits.
    glibc=$(find "$rootfs/var/cache/apt/archives" -name 'libc6_*_arm64.deb' | head -n 1)
    [[ -n $glibc ]] || die "no libc6 package in $rootfs"
    glibc=$(dpkg-deb -f "$glibc" Version | sed -E 's/^2\.([0-9]+).*/\1/')
    for v in $(seq 17 "$glibc"); do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
    platforms+=(--platform manylinux2014_aarch64)
    rm -rf "$wheels_dir" "$site"
    # Resolved against apt's numpy, so nothing here asks for another numpy; it is not unpacked.
    "$X86_PYTHON" -m pip download --quiet --disable-pip-version-check --dest "$wheels_dir" \
        "${platforms[@]}" --python-version "$version" --implementation cp --only-binary=:all: \
        "${WHEEL_REQUIREMENTS[@]}" "numpy==$numpy"
    local wheels=()
    mapfile -t wheels < <(find "$wheels_dir" -name '*.whl' ! -name 'numpy-*')
    "$X86_PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
        --target "$site" "${platforms[@]}" --python-version "$version" --implementation cp \
        --only-binary=:all: "${wheels[@]}"
    echo "$stamp" >"$site/.requirements"
}

# Every run reads the same code and model; the work tree may change during a run.
snapshot() {
    step "snapshot of device/ and the model"
    rm -rf "$SNAPSHOT"
    mkdir -p "$SNAPSHOT/bench/arm64" "$SNAPSHOT/models"
    cp -r "$REPO/device" "$SNAPSHOT/device"
    find "$SNAPSHOT/device" -name __pycache__ -prune -exec rm -rf {} +
    cp "$REPO/bench/arm64/predict_mnist.py" "$SNAPSHOT/bench/arm64/"
    # The model, its sidecar and the first look it names (convert first-look).
    cp "$REPO"/models/digitnet*_int8.tflite "$REPO"/models/digitnet*_int8.json "$SNAPSHOT/models/"
}

predict_args() {
    PREDICT_ARGS=(--mnist-dir "$MNIST" --model "$SNAPSHOT/models/digitnet_int8.tflite")
    [[ -n $SCANS ]] && PREDICT_ARGS+=(--scans-dir "$SCANS")
    return 0
}

run_x86() {
    step "x86_64: $X86_PYTHON"
    "$X86_PYTHON" "$SNAPSHOT/bench/arm64/predict_mnist.py" "${PREDICT_ARGS[@]}" --out "$OUT/x86_64"
}

run_arm() { # suite rootfs site-packages
    local suite=$1 rootfs=$2 site=$3 python
    python=$(python_of "$suite")
    step "aarch64 under qemu ($CPU): Debian $suite's $python"
    env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
        qemu-aarch64-static -cpu "$CPU" -L "$rootfs" \
        -E PYTHONPATH="$site" -E PYTHONDONTWRITEBYTECODE=1 \
        "$rootfs/usr/bin/$python" "$SNAPSHOT/bench/arm64/predict_mnist.py" \
        "${PREDICT_ARGS[@]}" --out "$OUT/$suite"
}

[[ -d $MNIST ]] || die "MNIST not found at $MNIST; set MNIST_DATA_DIR"
[[ -x $X86_PYTHON ]] || die "$X86_PYTHON not found; run 'make test' once or set X86_PYTHON"
[[ -f $REPO/models/digitnet_int8.tflite ]] || die "no shipped model in $REPO/models"
mkdir -p "$BUILD"
start=$(date +%s)
need_tools
for suite in $SUITES; do
    python_of "$suite" >/dev/null
    make_rootfs "$suite" "$BUILD/$suite/rootfs"
    write_cpuinfo "$BUILD/$suite/rootfs"
    install_wheels "$suite" "$BUILD/$suite/rootfs" "$BUILD/$suite/site-packages"
done
snapshot
predict_args
rm -rf "$OUT"
run_x86
arm_runs=()
for suite in $SUITES; do
    run_arm "$suite" "$BUILD/$suite/rootfs" "$BUILD/$suite/site-packages"
    arm_runs+=("$OUT/$suite")
done
step "compare"
compare_args=("$OUT/x86_64" "${arm_runs[@]}" --when "$(date -u +%Y-%m-%d), qemu -cpu $CPU")
[[ -n $DOC ]] && compare_args+=(--doc "$DOC")
status=0
"$X86_PYTHON" "$REPO/bench/arm64/compare_runs.py" "${compare_args[@]}" || status=$?
echo "total wall time: $(($(date +%s) - start)) s"
exit "$status"
