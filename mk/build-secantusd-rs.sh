#!/bin/sh
# Build secantusd-rs VERSION into ROOT/bin once per machine. Always exits 0: when it cannot be built the
# Python server is used instead, said in one line. A failed build is remembered (ROOT.failed) so that every
# later `make test` does not spend minutes failing again; `make embedded-retry` forgets it.
# Usage: build-secantusd-rs.sh VERSION TOOLCHAIN ROOT
version=$1 toolchain=$2 root=$3
binary="$root/bin/secantusd-rs"
fallback="the Python fallback (secantusd-py) will be used"

[ -x "$binary" ] && exit 0
if [ -f "$root.failed" ]; then
    echo "embedded database: secantusd-rs $version failed to build before (log: $root.log); $fallback (make embedded-retry tries again)"
    exit 0
fi
PATH="$PATH:$HOME/.cargo/bin"
if ! command -v cargo >/dev/null 2>&1; then
    echo "embedded database: cargo not found, so secantusd-rs cannot be built; $fallback"
    exit 0
fi
for tool in cc cmake; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "embedded database: $tool not found (needed to build WiredTiger for secantusd-rs); $fallback"
        exit 0
    fi
done

mkdir -p "$(dirname "$root")"
# One build per machine even when two clones run make at once: the second waits, then finds the binary.
exec 9>"$root.lock"
command -v flock >/dev/null 2>&1 && flock 9
[ -x "$binary" ] && exit 0

echo "embedded database: building secantusd-rs $version once for this machine (a few minutes; log: $root.log)"
cargo_toolchain=""
if command -v rustup >/dev/null 2>&1; then
    if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
        rustup toolchain install "$toolchain" --profile minimal >"$root.log" 2>&1
    fi
    cargo_toolchain="+$toolchain"
fi
# Into a scratch root first, so a half-built install is never taken for a working one.
partial="$root.partial.$$"
rm -rf "$partial"
if cargo $cargo_toolchain install secantus-mdb --version "$version" --locked --root "$partial" >>"$root.log" 2>&1 \
        && "$partial/bin/secantusd-rs" --version >>"$root.log" 2>&1; then
    rm -rf "$root"
    mv "$partial" "$root"
    echo "embedded database: secantusd-rs $version built ($binary)"
else
    rm -rf "$partial"
    touch "$root.failed"
    echo "embedded database: building secantusd-rs $version failed (log: $root.log); $fallback"
fi
exit 0
