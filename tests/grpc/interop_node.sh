#!/bin/sh
# interop_node.sh: installs @grpc/grpc-js and @grpc/proto-loader into DIR
# (once; later runs reuse them) and runs interop_node.js against the C test
# server. Exit 77 (skipped) only when npm cannot reach its registry.
# Usage: interop_node.sh DIR SERVER_BINARY TESTS_GRPC_DIR
set -u
dir=$1 server=$2 src=$3
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
NODE_PATH="$dir/node_modules" exec node "$src/interop_node.js" "$server" "$src/echo.proto"
