#!/bin/sh
# Install a Debian package the tests need, only as root and only when its
# program is missing; otherwise, or without apt-get or a network, say why
# and carry on: the tests that need it skip with that reason.
#
#   tools/system-deps.sh NAME PROGRAM WHO PACKAGE...
#   e.g. tools/system-deps.sh redis-deps redis-server "the Redis tests" redis-server
name=$1 program=$2 who=$3
shift 3
if command -v "$program" >/dev/null 2>&1; then
	exit 0
elif [ "$(id -u)" != 0 ]; then
	echo "$name: $program is missing and this is not root: $who will skip"
elif ! command -v apt-get >/dev/null 2>&1; then
	echo "$name: $program is missing and there is no apt-get: $who will skip"
else
	echo "$name: installing Debian's $* (apt-get)"
	log=$(mktemp)
	export DEBIAN_FRONTEND=noninteractive
	install="apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 $*"
	if $install >"$log" 2>&1 || { apt-get update -q >>"$log" 2>&1 && $install >>"$log" 2>&1; }; then
		echo "$name: $("$program" --version 2>/dev/null)"
	else
		echo "$name: could not install $* (no network?); $who will skip:"
		tail -n 3 "$log"
	fi
	rm -f "$log"
fi
