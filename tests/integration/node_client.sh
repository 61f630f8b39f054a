#!/bin/sh
# node_client.sh: installs @grpc/grpc-js and @grpc/proto-loader into DIR
# once (as tests/grpc/interop_node.sh does; later runs reuse them) and runs
# node_client.js against the real server. Exit 77 (skipped) only when npm
# cannot reach its registry.
# Usage: node_client.sh DIR VECTRON_BINARY VECTRON_PROTO TESTS_INTEGRATION_DIR
set -u
dir=$1 bin=$2 proto=$3 src=$4
mkdir -p "$dir" || exit 1
if [ ! -f "$dir/node_modules/@grpc/grpc-js/package.json" ] ||
   [ ! -f "$dir/node_modules/@grpc/proto-loader/package.json" ]; then
	if ! (cd "$dir" && npm install --no-audit --no-fund --prefix . \
		@grpc/grpc-js @grpc/proto-loader >npm-install.log 2>&1); then
		if ! npm ping >/dev/null 2>&1; then
			echo "SKIP: npm has no network (npm ping failed); see $dir/npm-install.log"
			exit 77
		fi
		echo "npm install failed although the registry answers:"
		cat "$dir/npm-install.log"
		exit 1
	fi
fi
NODE_PATH="$dir/node_modules" exec node "$src/node_client.js" "$bin" "$proto"
