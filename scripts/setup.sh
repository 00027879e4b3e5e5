#!/usr/bin/env bash
# Installs what building l7rec and running its tests needs on Debian 12 (as root):
# the BPF toolchain, and the real programs the tests use as peers and witnesses.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
pkgs=(
  clang llvm libelf-dev zlib1g-dev pkg-config bpftool   # build: BPF skeletons, libbpf
  tshark tcpdump                                        # tests: independent readers
  nginx-light curl python3 wrk                          # tests: real servers and clients
  time                                                  # benchmarks: CPU and peak RSS
  iproute2 ethtool nftables procps                      # tests: namespaces, MTU, loss
  openssl libssl3                                       # TLS: the traced library, test certificates
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx-light's package starts a system nginx on :80; tests run their own instances.
systemctl disable --now nginx >/dev/null 2>&1 || true
command -v cargo >/dev/null || { echo "setup.sh: cargo (Rust >= 1.95) is required" >&2; exit 1; }
echo "setup.sh: ready"
