#!/usr/bin/env bash
# systemd/install.sh, run for real in a Debian arm64 chroot per suite (bookworm, trixie), as far
# as it goes without systemd running: apt packages, the service user, the venv (keeping apt's
# numpy), the model, the settings and the unit. Then the installed venv reads the example
# pictures. Replaces the "## The installer" section of docs/ARM64.md; exits 1 if a step before
# systemctl failed, apt's numpy was replaced, or a picture was misread.
#
#   sudo bench/arm64/installer_chroot.sh
#
# Needs root: debootstrap, chroot, mounts, and binfmt_misc, through which the kernel hands arm64
# programs to qemu-aarch64-static (registered for the run and removed afterwards if it was not
# there before). Slow: every apt, pip and Python step is emulated (~15 minutes a suite on 2
# cores). Environment: SUITES ("bookworm trixie"), QEMU_CPU, DEBIAN_MIRROR, ARM64_DOC.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$REPO/.build/arm64
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITES=${SUITES:-bookworm trixie}
DOC=${ARM64_DOC-$REPO/docs/ARM64.md}
BINFMT=/proc/sys/fs/binfmt_misc
QEMU=/usr/bin/qemu-aarch64-static
# The kernel's pattern for an aarch64 ELF executable (what Debian's qemu-user-static registers).
ELF_MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
ELF_MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

die() {
    echo "installer_chroot: error: $*" >&2
    exit 1
}
step() { echo "==> $*"; }

((EUID == 0)) || die "run as root (debootstrap, chroot, mounts, binfmt_misc)"
command -v debootstrap >/dev/null && [[ -x $QEMU ]] ||
    die "needs debootstrap and qemu-user-static: apt-get install debootstrap qemu-user-static"

MOUNTED_BINFMT=0
REGISTERED=0
MOUNTS=()
cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done
    MOUNTS=()
    ((REGISTERED)) && echo -1 >"$BINFMT/qemu-aarch64-proof" || true
    ((MOUNTED_BINFMT)) && umount "$BINFMT" || true
}
trap cleanup EXIT

binfmt() {
    if [[ ! -e $BINFMT/register ]]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT"
        MOUNTED_BINFMT=1
    fi
    if ! grep -qs "^interpreter $QEMU" "$BINFMT"/qemu-aarch64* 2>/dev/null; then
        # F: the kernel opens qemu now, so the chroot needs no copy of it.
        echo ":qemu-aarch64-proof:M::$ELF_MAGIC:$ELF_MASK:$QEMU:F" >"$BINFMT/register"
        REGISTERED=1
    fi
}

make_chroot() { # suite dir
    [[ -f $2/.complete ]] && return 0
    step "Debian $1 arm64 system in $2 (debootstrap, both stages, emulated)"
    rm -rf "$2"
    mkdir -p "$2"
    debootstrap --arch arm64 --variant=minbase "$1" "$2" "$MIRROR" >"$2.debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $2.debootstrap.log"
    touch "$2/.complete"
}

mount_into() { # dir
    mount -t proc proc "$1/proc" && MOUNTS+=("$1/proc")
    mount --bind /dev "$1/dev" && MOUNTS+=("$1/dev")
    mount --bind /dev/pts "$1/dev/pts" && MOUNTS+=("$1/dev/pts")
    # As in arm64_proof.sh: LiteRT's XNNPACK crashes on the host's x86 /proc/cpuinfo.
    "$REPO/bench/arm64/pi_cpuinfo.sh" >"$1/tmp/cpuinfo"
    mount --bind "$1/tmp/cpuinfo" "$1/proc/cpuinfo" && MOUNTS+=("$1/proc/cpuinfo")
    cp /etc/resolv.conf "$1/etc/resolv.conf"
    # This machine reaches PyPI through a proxy with its own certificate authority.
    cp /etc/ssl/certs/ca-certificates.crt "$1/tmp/host-ca.crt"
}

in_chroot() { # dir command...
    local dir=$1
    shift
    chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        PIP_CERT=/tmp/host-ca.crt "$@"
}

check_suite() { # suite → one Markdown table row in $BUILD/SUITE/installer-row.md
    local suite=$1 dir=$BUILD/$1/chroot log=$BUILD/$1/installer.log
    make_chroot "$suite" "$dir"
    mount_into "$dir"
    rm -rf "$dir/root/pi-digits"
    mkdir -p "$dir/root/pi-digits/docs"
    cp -r "$REPO"/{pyproject.toml,README.md,device,systemd,models} "$dir/root/pi-digits/"
    cp -r "$REPO/docs/examples" "$dir/root/pi-digits/docs/"
    find "$dir/root/pi-digits" -name __pycache__ -prune -exec rm -rf {} +
    step "$suite: systemd/install.sh (log: $log)"
    local started=$SECONDS status=0
    in_chroot "$dir" bash /root/pi-digits/systemd/install.sh >"$log" 2>&1 || status=$?
    local took=$((SECONDS - started))
    # Without systemd the installer stops at its first systemctl, after everything else.
    grep -q '^==> enable and start' "$log" || die "$suite: the installer failed before systemd:
$(tail -n 20 "$log")"
    ((status != 0)) || die "$suite: the installer claims to have started a service without systemd"
    [[ -f $dir/etc/systemd/system/pi-digits.service && -f $dir/etc/pi-digits/digits.env ]] ||
        die "$suite: unit or settings missing"
    in_chroot "$dir" id pi-digits >/dev/null || die "$suite: no pi-digits user"

    local apt_numpy venv_numpy
    apt_numpy=$(in_chroot "$dir" dpkg-query -W -f '${Version}' python3-numpy | sed -E 's/^[0-9]+://; s/[-+~].*$//')
    venv_numpy=$(in_chroot "$dir" /opt/pi-digits/venv/bin/python -c \
        'import numpy; print(numpy.__version__, numpy.__file__)')
    [[ $venv_numpy == "$apt_numpy /usr/lib/python3/dist-packages/"* ]] ||
        die "$suite: the venv's numpy is $venv_numpy, not apt's $apt_numpy"
    local versions readings
    versions=$(in_chroot "$dir" /opt/pi-digits/venv/bin/python -c \
        'import platform, cv2, importlib.metadata as m; print(platform.python_version(), cv2.__version__, m.version("ai-edge-litert"), m.version("pi-heif"))')
    # The model's sidecar names its first look: the installer must have laid it down beside it,
    # or the device runs the model alone and logs that the first look is missing.
    [[ -f $dir/opt/pi-digits/models/digitnet_first_look_int8.tflite ]] ||
        die "$suite: the installer did not install the model's first look"
    readings=$(in_chroot "$dir" sh -c 'cd /tmp && /opt/pi-digits/venv/bin/python -m device predict \
        --model /opt/pi-digits/models/digitnet_int8.tflite /root/pi-digits/docs/examples/seven.png \
        /root/pi-digits/docs/examples/42.jpg /root/pi-digits/docs/examples/42.heic 2>&1')
    echo "$readings"
    ! grep -q 'names a first look' <<<"$readings" || die "$suite: the first look did not load"
    grep -q 'seven.png: digit 7 ' <<<"$readings" && grep -q '42.jpg: .*number 42;' <<<"$readings" &&
        grep -q '42.heic: .*number 42;' <<<"$readings" ||
        die "$suite: the installed service misread the examples"
    local python opencv litert heif
    read -r python opencv litert heif <<<"$versions"
    cleanup_mounts
    echo "| $suite | $python | $apt_numpy (apt, kept) | $opencv | $litert | $heif | $took s | 7, 42, 42 |" \
        >"$BUILD/$suite/installer-row.md"
}

cleanup_mounts() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}"; done
    MOUNTS=()
}

write_section() { # rows...
    local section
    section=$(
        cat <<EOF
## The installer

\`systemd/install.sh\` run for real ($(date -u +%Y-%m-%d), \`bench/arm64/installer_chroot.sh\`) in a
Debian arm64 chroot of each suite (\`debootstrap --variant=minbase\`, run through qemu by
binfmt_misc), as far as it goes without systemd running: apt's \`python3-venv\`,
\`python3-pip\` and \`python3-numpy\`, the \`pi-digits\` user, the venv in
\`/opt/pi-digits/venv\` (\`--system-site-packages\`, pip constrained to apt's numpy), the model
and its first look,
\`/etc/pi-digits/digits.env\` and the unit; it then stops at \`systemctl daemon-reload\`, as it
must without systemd. \`python3-picamera2\` is Raspberry Pi OS's own and not in Debian: the
installer says so and goes on. The installed venv then read the example pictures
(\`python -m device predict docs/examples/seven.png docs/examples/42.jpg docs/examples/42.heic\`,
the last through pi-heif's libheif). Install times are emulated and depend on what else the
machine ran meanwhile.

| suite | Python | numpy in the venv | OpenCV | LiteRT | pi-heif | install time (emulated) | read |
|---|---|---|---|---|---|---|---|
$(printf '%s\n' "$@")
EOF
    )
    [[ -n $DOC ]] || {
        echo "$section"
        return
    }
    python3 - "$DOC" "$section" <<'EOF'
import sys
from pathlib import Path

doc, section = Path(sys.argv[1]), sys.argv[2]
text = doc.read_text() if doc.is_file() else ""
head = text.split("\n## The installer\n")[0].rstrip("\n")
doc.write_text(f"{head}\n\n{section}\n")
EOF
}

binfmt
rows=()
for suite in $SUITES; do
    check_suite "$suite"
    rows+=("$(cat "$BUILD/$suite/installer-row.md")")
done
write_section "${rows[@]}"
echo "installer checked on: $SUITES"
