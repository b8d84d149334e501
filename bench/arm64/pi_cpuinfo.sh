#!/usr/bin/env bash
# Prints the /proc/cpuinfo of the Pi core qemu emulates (QEMU_CPU: cortex-a72 = Pi 4, the
# default; cortex-a76 = Pi 5), one entry per host core.
#
# qemu 7.2 passes the host's x86 /proc/cpuinfo through to the guest; LiteRT's XNNPACK (the
# cpuinfo library) finds no ARM core in it and crashes. arm64_proof.sh puts this file in the
# rootfs (qemu -L looks paths up there first), installer_chroot.sh mounts it over the chroot's.
set -euo pipefail

case "${QEMU_CPU:-cortex-a72}" in
    cortex-a72)
        part=0xd08 variant=0x0 revision=3 model="Raspberry Pi 4 Model B"
        features="fp asimd evtstrm crc32 cpuid"
        ;;
    cortex-a76)
        part=0xd0b variant=0x4 revision=1 model="Raspberry Pi 5 Model B"
        features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid"
        features+=" asimdrdm lrcpc dcpop asimddp"
        ;;
    *)
        echo "pi_cpuinfo: error: QEMU_CPU=$QEMU_CPU: use cortex-a72 (Pi 4) or cortex-a76 (Pi 5)" >&2
        exit 1
        ;;
esac
count=$(getconf _NPROCESSORS_CONF)
for ((i = 0; i < count; i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\n' "$i" "$features"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\n' "$variant"
    printf 'CPU part\t: %s\nCPU revision\t: %s\n\n' "$part" "$revision"
done
printf 'Model\t\t: %s\n' "$model"
