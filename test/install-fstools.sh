#!/usr/bin/env bash
# install-fstools.sh: the disk-full tests on real block devices build small
# filesystems on loop devices (losetup and mount from util-linux): e2e
# TestDiskFullBlockDevice an ext4 one (mkfs.ext4, e2fsprogs), e2e
# TestDiskFullAtFsync a thin-provisioned XFS one (mkfs.xfs, xfsprogs). Uses
# apt-get only when one of them is missing.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
missing=()
have mkfs.ext4 || missing+=(e2fsprogs)
have mkfs.xfs || missing+=(xfsprogs)
{ have losetup && have mount; } || missing+=(util-linux mount)
if [ "${#missing[@]}" -eq 0 ]; then
	echo "mkfs.ext4, mkfs.xfs, losetup and mount already installed"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-fstools.sh: ${missing[*]} missing and apt-get is not available; install them with your package manager" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}"
