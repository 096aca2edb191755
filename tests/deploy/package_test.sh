#!/usr/bin/env bash
# The Debian package: built with CPack from this build, its control data checked (shared-library
# dependencies, conffiles, maintainer scripts), unpacked with `dpkg -x` into a temporary
# directory, and what it installs run from there: `--version` of each binary, the example
# configs accepted by `--check-config` with every key set, the migrations identical to the
# sources, and both systemd units clean under `systemd-analyze verify`.
# Usage: package_test.sh BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) version=$3
command -v dpkg-deb >/dev/null || { echo "package_test: SKIP: no dpkg-deb"; exit 77; }
work=$(mktemp -d /tmp/pylon-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "package_test: FAIL: $*" >&2; exit 1; }

echo "-- cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/out/pylon_"$version"_*.deb) || fail "no pylon_${version}_*.deb"
echo "   $(basename "$deb"): $(($(stat -c %s "$deb") / 1024)) KiB"

echo "-- control data"
[ "$(dpkg-deb -f "$deb" Package)" = pylon ] || fail "package name"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "package version"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libpqxx libsodium libssl libspdlog adduser; do
    grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$work" ./conffiles ./postinst ./postrm
grep -qx /etc/pylon-registry/registry.toml "$work/conffiles" &&
    grep -qx /etc/pylon-agent/agent.toml "$work/conffiles" || fail "conffiles: $(cat "$work/conffiles")"
sh -n "$work/postinst" && sh -n "$work/postrm" || fail "maintainer scripts do not parse"

echo "-- dpkg -x, then run what it installs"
root=$work/root
dpkg -x "$deb" "$root"
for b in pylon pylon-registry pylon-agent; do
    out=$("$root/usr/bin/$b" --version)
    [ "$out" = "$b $version" ] || fail "$b --version printed '$out'"
    echo "   $out"
done
[ -x "$root/usr/bin/pylon-fleet-sim" ] || fail "no pylon-fleet-sim"
file "$root/usr/bin/pylon-registry" 2>/dev/null | grep -q "not stripped" && fail "binaries are not stripped"
for f in registry.toml agent.toml; do
    cmp "$src/deploy/config/$f" "$root/etc/pylon-${f%.toml}/$f" || fail "$f differs from deploy/config"
done
out=$(env -u PYLON_REGISTRY_DATA_DIR "$root/usr/bin/pylon-registry" --check-config \
    --config "$root/etc/pylon-registry/registry.toml") || fail "registry.toml: $out"
grep -qx "at their defaults: (none)" <<<"$out" || fail "registry.toml does not set every key: $out"
out=$("$root/usr/bin/pylon-agent" run --check-config --config "$root/etc/pylon-agent/agent.toml") ||
    fail "agent.toml: $out"
grep -qx "at their defaults: (none)" <<<"$out" || fail "agent.toml does not set every key: $out"
for m in "$src"/migrations/*.sql; do
    cmp "$m" "$root/usr/share/pylon/migrations/$(basename "$m")" || fail "migration $(basename "$m")"
done
for f in README.md OPERATIONS.md SECURITY.md ARCHITECTURE.md openapi.yaml copyright examples/pylon-registry.conf; do
    [ -s "$root/usr/share/doc/pylon/$f" ] || fail "no /usr/share/doc/pylon/$f"
done
cmp "$src/deploy/samples/stories260K-q8_0.gguf" "$root/usr/share/pylon/samples/stories260K-q8_0.gguf" ||
    fail "sample model"

echo "-- systemd-analyze verify (ExecStart pointed at the unpacked binaries)"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$work/units"
    for u in pylon-registry pylon-agent; do
        sed "s|ExecStart=/usr/bin/|ExecStart=$root/usr/bin/|" \
            "$root/usr/lib/systemd/system/$u.service" >"$work/units/$u.service"
        cmp -s "$src/deploy/systemd/$u.service" "$root/usr/lib/systemd/system/$u.service" ||
            fail "$u.service differs from deploy/systemd"
    done
    # verify exits 0 on unknown keys and bad values too: any message is a failure.
    msgs=$(systemd-analyze verify "$work"/units/*.service 2>&1) || fail "systemd-analyze: $msgs"
    [ -z "$msgs" ] || fail "systemd-analyze verify: $msgs"
    echo "   both units verified clean"
else
    echo "   SKIPPED: systemd-analyze is not installed (package systemd)"
fi
echo "package_test: OK"
