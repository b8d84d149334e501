#!/usr/bin/env bash
# arm64 proof: the device side on Debian bookworm arm64 (python3.11, apt numpy 1.24) under qemu
# user-mode emulation reads all 10,000 MNIST test digits with the shipped model and must predict
# exactly what it predicts on x86_64. Writes docs/ARM64.md; exits 1 if any prediction differs.
#
#   bench/arm64/arm64_proof.sh            (as root the first time: it apt-installs qemu-user-static
#                                          and debootstrap if they are missing)
#
# Takes about 5 minutes on 2 cores once the rootfs (~250 MB) and wheels are cached in
# .build/arm64/ (first run: + ~1 minute of downloads). Not part of `make test`.
#
# Environment: MNIST_DATA_DIR, SCANS_DIR (handwriting_dev; SCANS_DIR= skips it), X86_PYTHON,
# QEMU_CPU (cortex-a72 = Pi 4, the default; cortex-a76 = Pi 5), DEBIAN_MIRROR, ARM64_DOC.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$REPO/.build/arm64
ROOTFS=$BUILD/rootfs
SITE=$BUILD/site-packages
WHEELS=$BUILD/wheels
SNAPSHOT=$BUILD/snapshot
OUT=$BUILD/out
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
MNIST=${MNIST_DATA_DIR:-$REPO/../shared/data/mnist}
SCANS=${SCANS_DIR-$REPO/../shared/data/handwriting_dev}
X86_PYTHON=${X86_PYTHON:-$REPO/.venv/bin/python}
CPU=${QEMU_CPU:-cortex-a72}
DOC=${ARM64_DOC-$REPO/docs/ARM64.md}
# What the device side's runtime path needs on the Pi (numpy comes from apt, not from here).
WHEEL_REQUIREMENTS=(ai-edge-litert==2.3.0 opencv-python-headless==4.11.0.86)
APT_NUMPY=1.24.2 # bookworm's python3-numpy; the wheels are resolved against it

die() {
    echo "arm64_proof: error: $*" >&2
    exit 1
}
step() { echo "==> $*"; }

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

make_rootfs() {
    [[ -f $ROOTFS/.complete ]] && return 0
    ((EUID == 0)) || die "building the arm64 rootfs needs root (debootstrap); run once with sudo"
    step "Debian bookworm arm64 rootfs in $ROOTFS"
    rm -rf "$ROOTFS"
    # --foreign: only download and unpack; the second stage would need to run arm64 programs.
    debootstrap --arch arm64 --foreign --variant=minbase --include=python3.11,python3-numpy \
        bookworm "$ROOTFS" "$MIRROR" >"$BUILD/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $BUILD/debootstrap.log"
    # The first stage unpacked only the essential packages; unpack the rest (python, numpy and
    # their libraries) the same way. No maintainer scripts run, so do the one that matters:
    # the BLAS/LAPACK alternatives numpy links against.
    local deb
    for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do
        dpkg-deb -x "$deb" "$ROOTFS"
    done
    ln -sf blas/libblas.so.3 "$ROOTFS/usr/lib/aarch64-linux-gnu/libblas.so.3"
    ln -sf lapack/liblapack.so.3 "$ROOTFS/usr/lib/aarch64-linux-gnu/liblapack.so.3"
    touch "$ROOTFS/.complete"
}

# qemu 7.2 passes the host's x86 /proc/cpuinfo through; LiteRT's XNNPACK (cpuinfo library)
# finds no ARM core in it and crashes. qemu looks paths up under -L first, so the rootfs gets
# the cpuinfo of the emulated Pi's cores.
write_cpuinfo() {
    local part variant revision features model count i
    case "$CPU" in
        cortex-a72)
            part=0xd08 variant=0x0 revision=3 model="Raspberry Pi 4 Model B"
            features="fp asimd evtstrm crc32 cpuid"
            ;;
        cortex-a76)
            part=0xd0b variant=0x4 revision=1 model="Raspberry Pi 5 Model B"
            features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid"
            features+=" asimdrdm lrcpc dcpop asimddp"
            ;;
        *) die "QEMU_CPU=$CPU: use cortex-a72 (Pi 4) or cortex-a76 (Pi 5)" ;;
    esac
    count=$(getconf _NPROCESSORS_CONF)
    {
        for ((i = 0; i < count; i++)); do
            printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\n' "$i" "$features"
            printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\n' "$variant"
            printf 'CPU part\t: %s\nCPU revision\t: %s\n\n' "$part" "$revision"
        done
        printf 'Model\t\t: %s\n' "$model"
    } >"$ROOTFS/proc/cpuinfo"
}

install_wheels() {
    local stamp="$SITE/.requirements"
    [[ -f $stamp && $(cat "$stamp") == "${WHEEL_REQUIREMENTS[*]}" ]] && return 0
    step "aarch64 wheels: ${WHEEL_REQUIREMENTS[*]}"
    local platforms=() v
    # Bookworm's glibc is 2.36: every manylinux tag up to it fits.
    for v in $(seq 17 36); do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
    platforms+=(--platform manylinux2014_aarch64)
    rm -rf "$WHEELS" "$SITE"
    "$X86_PYTHON" -m pip download --quiet --disable-pip-version-check --dest "$WHEELS" \
        "${platforms[@]}" --python-version 3.11 --implementation cp --only-binary=:all: \
        "${WHEEL_REQUIREMENTS[@]}" "numpy==$APT_NUMPY"
    local wheels=()
    mapfile -t wheels < <(find "$WHEELS" -name '*.whl' ! -name 'numpy-*')
    "$X86_PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
        --target "$SITE" "${platforms[@]}" --python-version 3.11 --implementation cp \
        --only-binary=:all: "${wheels[@]}"
    echo "${WHEEL_REQUIREMENTS[*]}" >"$stamp"
}

# Both sides must run the same code and model; the work tree may change during a run.
snapshot() {
    step "snapshot of device/ and the model"
    rm -rf "$SNAPSHOT"
    mkdir -p "$SNAPSHOT/bench/arm64" "$SNAPSHOT/models"
    cp -r "$REPO/device" "$SNAPSHOT/device"
    find "$SNAPSHOT/device" -name __pycache__ -prune -exec rm -rf {} +
    cp "$REPO/bench/arm64/predict_mnist.py" "$SNAPSHOT/bench/arm64/"
    cp "$REPO"/models/digitnet_int8.tflite "$REPO"/models/digitnet_int8.json "$SNAPSHOT/models/"
}

run_both() {
    local args=(--mnist-dir "$MNIST" --model "$SNAPSHOT/models/digitnet_int8.tflite")
    [[ -n $SCANS ]] && args+=(--scans-dir "$SCANS")
    rm -rf "$OUT"
    step "x86_64: $X86_PYTHON"
    "$X86_PYTHON" "$SNAPSHOT/bench/arm64/predict_mnist.py" "${args[@]}" --out "$OUT/x86_64"
    step "aarch64 under qemu ($CPU): $ROOTFS/usr/bin/python3.11"
    env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
        qemu-aarch64-static -cpu "$CPU" -L "$ROOTFS" \
        -E PYTHONPATH="$SITE" -E PYTHONDONTWRITEBYTECODE=1 \
        "$ROOTFS/usr/bin/python3.11" "$SNAPSHOT/bench/arm64/predict_mnist.py" \
        "${args[@]}" --out "$OUT/aarch64"
}

[[ -d $MNIST ]] || die "MNIST not found at $MNIST; set MNIST_DATA_DIR"
[[ -x $X86_PYTHON ]] || die "$X86_PYTHON not found; run 'make test' once or set X86_PYTHON"
[[ -f $REPO/models/digitnet_int8.tflite ]] || die "no shipped model in $REPO/models"
mkdir -p "$BUILD"
start=$(date +%s)
need_tools
make_rootfs
write_cpuinfo
install_wheels
snapshot
run_both
step "compare"
compare_args=("$OUT/x86_64" "$OUT/aarch64" --when "$(date -u +%Y-%m-%d), qemu -cpu $CPU")
[[ -n $DOC ]] && compare_args+=(--doc "$DOC")
status=0
"$X86_PYTHON" "$REPO/bench/arm64/compare_runs.py" "${compare_args[@]}" || status=$?
echo "total wall time: $(($(date +%s) - start)) s"
exit "$status"
