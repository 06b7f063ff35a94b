#!/usr/bin/env bash
# The vendored tansu crates are the crates.io release plus vendor/patches/, in order.
# This rebuilds them from that baseline, so the series can be checked and carried to
# another tansu release:
#
#   vendor/tansu-patches.sh check            rebuild, compare with vendor/tansu-*; fail on any difference
#   vendor/tansu-patches.sh apply            rebuild and write vendor/tansu-*
#   vendor/tansu-patches.sh apply 0.6.1      the same over another release (not checksummed)
#
# A patch that does not apply exactly (no fuzz) stops with its name: the series has
# drifted from the baseline and that patch needs redoing.
set -euo pipefail

PINNED=0.6.0
# sha256 of the .crate files crates.io serves for $PINNED (cargo's Cargo.lock checksums).
declare -A PINNED_SHA256=(
    [tansu-broker]=93c1e91b40c2a706dfdbe9a795c08c70918c874ad23f6e0e87564cc0a180e720
    [tansu-storage]=720d2ed8e6010c70f7f06e5af5a7274ebbf6e42fdcd9e46de542b10dc4d2f35d
)
CRATES=(tansu-broker tansu-storage)
# Published files the vendored crates leave out (their own tests need a full tansu
# checkout; the lock file and the original manifest are not used by a path dependency).
LEFT_OUT=(tests benches .cargo_vcs_info.json Cargo.lock Cargo.toml.orig)

vendor=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}
version=${2:-$PINNED}
case $mode in
check | apply) ;;
*)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
for tool in curl tar patch sha256sum diff; do
    command -v "$tool" >/dev/null || {
        echo "tansu-patches: needs $tool" >&2
        exit 2
    }
done

cache=${XDG_CACHE_HOME:-$HOME/.cache}/loyalty-swarm/crates
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for crate in "${CRATES[@]}"; do
    file=$cache/$crate-$version.crate
    if [[ ! -s $file ]]; then
        curl -sSfL --retry 3 -o "$file.part" "https://static.crates.io/crates/$crate/$crate-$version.crate"
        mv "$file.part" "$file"
    fi
    sum=$(sha256sum "$file" | cut -d' ' -f1)
    if [[ $version == "$PINNED" && $sum != "${PINNED_SHA256[$crate]}" ]]; then
        echo "tansu-patches: $file has sha256 $sum, not crates.io's ${PINNED_SHA256[$crate]}" >&2
        rm -f "$file" # downloaded again next time
        exit 1
    fi
    tar -xzf "$file" -C "$work"
    mv "$work/$crate-$version" "$work/$crate"
    for left_out in "${LEFT_OUT[@]}"; do
        rm -rf "${work:?}/$crate/$left_out"
    done
done

for series in "$vendor"/patches/[0-9][0-9][0-9][0-9]-*.patch; do
    if ! out=$(cd "$work" && patch -p1 --fuzz=0 --forward --batch --no-backup-if-mismatch <"$series" 2>&1) ||
        grep -q 'with fuzz\|offset [0-9]* line' <<<"$out"; then
        echo "tansu-patches: $(basename "$series") does not apply exactly to tansu $version:" >&2
        echo "$out" >&2
        exit 1
    fi
done

case $mode in
check)
    drift=0
    for crate in "${CRATES[@]}"; do
        diff -ruN "$work/$crate" "$vendor/$crate" || drift=1
    done
    if ((drift)); then
        echo "tansu-patches: vendor/ differs from tansu $version plus vendor/patches/ (diff above);" >&2
        echo "  put the change in a patch, or run 'vendor/tansu-patches.sh apply'" >&2
        exit 1
    fi
    echo "tansu-patches: vendor/tansu-* is tansu $version plus $(ls "$vendor"/patches/*.patch | wc -l) patches"
    ;;
apply)
    for crate in "${CRATES[@]}"; do
        rm -rf "${vendor:?}/$crate"
        cp -r "$work/$crate" "$vendor/$crate"
    done
    echo "tansu-patches: wrote vendor/tansu-* from tansu $version plus vendor/patches/"
    ;;
esac
