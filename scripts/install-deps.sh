#!/usr/bin/env bash
# Installs everything the CPI needs to build and test on Debian 12. Idempotent: installs only
# what is missing, and runs `apt-get update` only when something is.
set -euo pipefail

packages=(
  build-essential cmake pkg-config g++-11
  libvirt-dev libpugixml-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libarchive-dev
  libgtest-dev libgmock-dev
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
  libvirt-daemon-driver-lxc e2fsprogs lvm2
  libarchive-tools util-linux ruby python3 clang libclang-rt-14-dev
  gnutls-bin openssh-server
  # the real-agent e2e stemcell (tests/e2e/agent-stemcell) and its tests
  debootstrap fdisk grub-pc-bin flex bison curl openssl iproute2
  # rebuilds (other checkouts, the sanitizer and fuzz builds) from the compiler cache
  ccache
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
echo "dependencies: all installed"
