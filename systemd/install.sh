#!/usr/bin/env bash
# Install the Pi digit reader as a systemd service on Raspberry Pi OS (Bookworm or Trixie).
#
#   sudo systemd/install.sh              install or upgrade, enable and start
#   sudo systemd/install.sh --uninstall  stop and remove it (keeps /etc/pi-digits; --purge too)
#   systemd/install.sh --dry-run         print every action, change nothing
#   systemd/install.sh --root DIR        lay everything out under DIR (for tests): apt, useradd
#                                        and systemctl are printed, not run
#
# Safe to run again: the venv is updated in place, the model and the unit are replaced, and an
# existing /etc/pi-digits/digits.env is kept as you edited it.
set -euo pipefail
umask 022 # the venv and model must be readable by the service user

NAME=pi-digits
SERVICE_USER=pi-digits
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PI_DIGITS_PYTHON:-/usr/bin/python3}
APT_PACKAGES=(python3-venv python3-pip python3-numpy)
# Raspberry Pi OS only (absent from plain Debian): the Pi camera stack with its libcamera.
CAMERA_PACKAGE=python3-picamera2
# The model, and the cheaper model its sidecar names as its first look (`convert first-look`).
MODEL_FILES=(digitnet_int8.tflite digitnet_int8.json
    digitnet_first_look_int8.tflite digitnet_first_look_int8.json)

ARGS=("$@")
STAGE="" # a temporary copy of the source, removed on exit
trap '[[ -z $STAGE ]] || rm -rf "$STAGE"' EXIT
ROOT=""
DRY_RUN=0
UNINSTALL=0
PURGE=0
SKIP_VENV=0
START=1

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0"
    cat <<'EOF'
Options:
  --dry-run      print every action without doing it
  --root DIR     install under DIR instead of / (no apt, useradd or systemctl)
  --uninstall    stop, disable and remove the service, its venv and model
  --purge        with --uninstall: also remove /etc/pi-digits and the pi-digits user
  --source DIR   the checkout to install from (default: the one holding this script)
  --skip-venv    do not create or update the venv (config, model and unit only)
  --no-start     install and enable, but do not (re)start the service now
  -h, --help     this help
EOF
}

die() {
    echo "install.sh: error: $*" >&2
    exit 1
}

while (($#)); do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --root)
            (($# >= 2)) || die "--root needs a directory, e.g. --root /tmp/pi-root"
            ROOT=$2
            shift
            ;;
        --root=*) ROOT=${1#--root=} ;;
        --source)
            (($# >= 2)) || die "--source needs a checkout directory"
            SOURCE_DIR=$(cd "$2" && pwd) || die "--source $2 is not a directory"
            shift
            ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --skip-venv) SKIP_VENV=1 ;;
        --no-start) START=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done

if [[ -n $ROOT ]]; then
    [[ $ROOT == /* ]] || ROOT="$PWD/$ROOT"
    ROOT=${ROOT%/}
    [[ -n $ROOT ]] || die "--root / is the real system: run without --root instead"
fi
((PURGE == 0 || UNINSTALL == 1)) || die "--purge only goes with --uninstall"
if ((EUID != 0)) && [[ -z $ROOT ]] && ((DRY_RUN == 0)); then
    die "run as root: sudo $0 ${ARGS[*]} (or try --dry-run to see what it would do)"
fi

PREFIX=/opt/$NAME
VENV=$PREFIX/venv
MODELS=$PREFIX/models
CONF_DIR=/etc/$NAME
ENV_FILE=$CONF_DIR/digits.env
UNIT=/etc/systemd/system/$NAME.service

# Every change goes through one of these two, so --dry-run and --root print exactly what a real
# run does.
quoted() { printf '%q ' "$@" | sed 's/ $//'; }
run() { # a command on files under $ROOT
    echo "+ $(quoted "$@")"
    ((DRY_RUN)) || "$@"
}
system() { # a command that changes the running system: never under --root
    if [[ -n $ROOT ]]; then
        echo "+ $(quoted "$@") (skipped: --root)"
    else
        run "$@"
    fi
}

write() { # a small file under $ROOT with the given content
    echo "+ write $1: ${2:-(empty)}"
    ((DRY_RUN)) && return 0
    if [[ -n $2 ]]; then printf '%s\n' "$2" >"$1"; else : >"$1"; fi
}

note() { echo "==> $*"; }

check_platform() {
    [[ -n $ROOT ]] && return 0
    local arch
    arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
    case "$arch" in
        arm64 | amd64) ;;
        armhf | armel)
            die "this is a 32-bit system ($arch); LiteRT needs 64-bit Raspberry Pi OS (arm64): reflash with the 64-bit image"
            ;;
        *) echo "    warning: untested architecture $arch" ;;
    esac
}

check_source() {
    [[ -f $SOURCE_DIR/pyproject.toml && -d $SOURCE_DIR/device ]] ||
        die "$SOURCE_DIR is not a pi-digit-reader checkout (no pyproject.toml or device/)"
    local file
    for file in "${MODEL_FILES[@]}"; do
        [[ -f $SOURCE_DIR/models/$file ]] ||
            die "model file models/$file is missing in $SOURCE_DIR; run 'make model' or fetch the shipped model"
    done
}

install_apt_packages() {
    note "system packages"
    if [[ -z $ROOT ]] && ! command -v apt-get >/dev/null; then
        die "apt-get not found: this installer is for Raspberry Pi OS / Debian"
    fi
    system apt-get update
    system env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
    if [[ -n $ROOT ]] || apt-cache show "$CAMERA_PACKAGE" >/dev/null 2>&1; then
        system env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$CAMERA_PACKAGE"
    else
        echo "    $CAMERA_PACKAGE is not in this system's apt sources (not Raspberry Pi OS?):"
        echo "    the Pi camera module will not work; USB cameras (DIGITS_CAMERA=opencv:0) will."
    fi
}

create_user() {
    note "service user $SERVICE_USER"
    if [[ -z $ROOT ]] && id "$SERVICE_USER" >/dev/null 2>&1; then
        echo "    exists"
        return
    fi
    system useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Pi digit reader" "$SERVICE_USER"
}

# numpy as apt installed it, so pip keeps it: picamera2 and simplejpeg from apt were built
# against that numpy, and a pip numpy 2 in the venv would break them.
apt_numpy_version() {
    "$PYTHON" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true
}

install_venv() {
    note "virtual environment $VENV"
    if ((SKIP_VENV)); then
        echo "    skipped (--skip-venv)"
        return
    fi
    command -v "$PYTHON" >/dev/null || [[ -x $PYTHON ]] ||
        die "$PYTHON not found; install python3 (or set PI_DIGITS_PYTHON)"
    local venv=$ROOT$VENV
    if [[ ! -x $venv/bin/python ]]; then
        # --system-site-packages: apt's picamera2 and libcamera bindings stay importable.
        run "$PYTHON" -m venv --system-site-packages "$venv"
    fi
    local numpy constraints=$ROOT$PREFIX/constraints.txt
    numpy=$(apt_numpy_version)
    if [[ -n $numpy ]]; then
        echo "    keeping the system's numpy $numpy"
        write "$constraints" "numpy==$numpy"
    else
        echo "    no system numpy found for $PYTHON; pip chooses one"
        write "$constraints" ""
    fi
    # Built from a copy of just the device side: the build writes into the tree it builds
    # (build/, *.egg-info), and your checkout should not get root-owned files; nor does the
    # Pi need the workstation's train/ and convert/.
    local stage=/tmp/pi-digits-src.XXXXXX
    if ((DRY_RUN == 0)); then
        stage=$(mktemp -d /tmp/pi-digits-src.XXXXXX)
        STAGE=$stage
    fi
    run cp -RL "$SOURCE_DIR/pyproject.toml" "$SOURCE_DIR/README.md" "$SOURCE_DIR/device" "$stage/"
    run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --constraint "$constraints" "${stage}[device]"
    # Bytecode now, because the service may not write under /opt (ProtectSystem=strict).
    run "$venv/bin/python" -m compileall -q "$venv/lib"
}

install_files() {
    note "model into $MODELS"
    run install -d -m 0755 "$ROOT$MODELS"
    local file
    for file in "${MODEL_FILES[@]}"; do
        run install -m 0644 "$SOURCE_DIR/models/$file" "$ROOT$MODELS/$file"
    done

    note "configuration $ENV_FILE"
    run install -d -m 0755 "$ROOT$CONF_DIR"
    if [[ -e $ROOT$ENV_FILE ]]; then
        echo "    kept as it is (compare with $SOURCE_DIR/systemd/digits.env.example)"
    else
        # 0640 root:pi-digits: it may hold DIGITS_TOKEN.
        run install -m 0640 "$SOURCE_DIR/systemd/digits.env.example" "$ROOT$ENV_FILE"
        system chgrp "$SERVICE_USER" "$ENV_FILE"
    fi

    note "unit $UNIT"
    run install -d -m 0755 "$ROOT$(dirname "$UNIT")"
    run install -m 0644 "$SOURCE_DIR/systemd/$NAME.service" "$ROOT$UNIT"
}

start_service() {
    note "enable and start"
    system systemctl daemon-reload
    system systemctl enable "$NAME.service"
    if ((START == 0)); then
        echo "    not started (--no-start): sudo systemctl start $NAME"
        return
    fi
    # restart, not start: a re-run must load the new code. With Type=notify this returns once
    # the service said READY=1 (model loaded, port listening) or failed.
    if [[ -z $ROOT ]] && ((DRY_RUN == 0)); then
        echo "+ systemctl restart $NAME.service"
        if ! systemctl restart "$NAME.service"; then
            journalctl -u "$NAME" -n 20 --no-pager >&2 || true
            die "the service did not start; the journal lines above say why (journalctl -u $NAME)"
        fi
    else
        system systemctl restart "$NAME.service"
    fi
}

print_url() {
    local port=8000 line address
    if [[ -f $ROOT$ENV_FILE ]]; then
        line=$(grep -E '^[[:space:]]*DIGITS_PORT=' "$ROOT$ENV_FILE" | tail -n 1 || true)
        [[ -n $line ]] && port=${line#*=}
    fi
    address=$(hostname -I 2>/dev/null | awk '{print $1}')
    echo
    if ((DRY_RUN)); then
        echo "Dry run: nothing was changed. After a real run, try:"
    else
        echo "Done. Try:"
    fi
    echo "    curl http://${address:-localhost}:$port/predict"
    echo "Logs: journalctl -u $NAME -f    Settings: $ENV_FILE (then: sudo systemctl restart $NAME)"
}

uninstall() {
    note "stop and disable"
    if [[ -z $ROOT ]] && ! systemctl cat "$NAME.service" >/dev/null 2>&1; then
        echo "    no $NAME.service loaded"
    else
        system systemctl disable --now "$NAME.service"
    fi
    note "remove"
    run rm -f "$ROOT$UNIT"
    system systemctl daemon-reload
    run rm -rf "$ROOT$PREFIX"
    if ((PURGE)); then
        run rm -rf "$ROOT$CONF_DIR"
        if [[ -n $ROOT ]] || id "$SERVICE_USER" >/dev/null 2>&1; then
            system userdel "$SERVICE_USER"
        fi
    else
        echo "    kept $CONF_DIR (your settings); --uninstall --purge removes it and the user"
    fi
    echo "Removed $NAME."
}

((DRY_RUN)) && echo "(dry run: nothing is changed)"
[[ -n $ROOT ]] && echo "(installing under $ROOT)"
if ((UNINSTALL)); then
    uninstall
    exit 0
fi
check_platform
check_source
install_apt_packages
create_user
install_venv
install_files
start_service
print_url
