#!/bin/sh
# Installs the Debian packages the build, tests and benchmarks need.
# Idempotent and quiet when nothing is missing; `apt-get update` runs only
# when something has to be installed.
set -eu

PKGS="build-essential cmake pkg-config clang llvm libclang-rt-14-dev
libcmocka-dev libxxhash-dev zlib1g-dev liblmdb-dev libjansson-dev
libhnswlib-dev dataset-fashion-mnist
libuv1-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libraft-dev
protobuf-compiler node-llhttp nghttp2-client
python3 python3-numpy python3-grpcio python3-protobuf python3-requests
python3-pytest iproute2"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
