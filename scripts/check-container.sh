#!/usr/bin/env bash
# Checks what the Dockerfile promises, without a Docker engine:
#  1. every path the Dockerfile COPYs from the build context exists in the repo;
#  2. the release binary built as in the build stage (--static-swift-stdlib) needs
#     no shared library beyond what the runtime stage installs (libcurl4 and its
#     dependencies, on top of Debian's base: libc6, libgcc-s1, libstdc++6, zlib1g), and,
#     stripped as the image ships it, weighs at most 40 MB;
#  3. the entrypoint command the image runs works (`cors-proxy serve --help`, and
#     `check` on the image's default conf);
#  4. the Kubernetes manifests (deploy/kubernetes) hang together: selectors, ports, the HPA and
#     the PodDisruptionBudget, the shutdown budget, the TLS certificate from a Secret volume, and
#     the ConfigMap's conf passes `check` (scripts/check-manifests.py).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-container: FAIL: $*" >&2; exit 1; }

# 1. COPY sources (not --from=...) exist.
while read -r src; do
  [ -e "$src" ] || fail "Dockerfile copies '$src', which is not in the repo"
  echo "ok: COPY $src"
done < <(awk '/^COPY / && !/--from/ { for (i = 2; i < NF; i++) print $i }' Dockerfile)
grep -q '^ENTRYPOINT \["/usr/local/bin/cors-proxy"\]' Dockerfile || fail "ENTRYPOINT is not the exec form of /usr/local/bin/cors-proxy"
grep -q '^HEALTHCHECK' Dockerfile || fail "no HEALTHCHECK"
grep -q '^USER ' Dockerfile || fail "the image runs as root"

# 2. Shared libraries of the static-stdlib release binary.
scratch=.build-static
swift build -c release --static-swift-stdlib --product cors-proxy --scratch-path "$scratch" >/dev/null
built="$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/cors-proxy"
# What the image ships: the same build, stripped as the Dockerfile does.
grep -q '&& strip /out/cors-proxy' Dockerfile || fail "the Dockerfile no longer strips the binary"
bin="$scratch/cors-proxy.stripped"
strip -o "$bin" "$built"
size_mb=$(( $(stat -c %s "$bin") / 1000000 ))
[ "$size_mb" -le 40 ] || fail "the stripped static binary is $size_mb MB (budget: 40 MB)"
allowed=" libc6 libgcc-s1 libstdc++6 zlib1g libcurl4 "
for dep in $(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances --no-pre-depends libcurl4 | grep -v '^ ' | grep -v '^<' | sort -u); do
  allowed+="${dep%%:*} "
done
missing=0
while read -r lib path; do
  [ -n "$path" ] || continue
  owner=$(dpkg -S "*/$(basename "$path")" 2>/dev/null | head -1 | cut -d: -f1)
  if [[ -z "$owner" || " $allowed " != *" $owner "* ]]; then
    echo "not provided by the runtime stage: $lib ($path, package ${owner:-unknown})" >&2
    missing=1
  else
    echo "ok: $lib from $owner"
  fi
done < <(ldd "$bin" | awk '/=>/ { print $1, $3 } !/=>/ && /\// { print $1, $1 }')
ldd "$bin" | grep -q "not found" && fail "ldd reports a library not found"
ldd "$bin" | grep -q "libswiftCore" && fail "the Swift runtime is linked dynamically (expected --static-swift-stdlib)"
[ $missing -eq 0 ] || fail "the binary needs libraries the runtime image does not install"

# 3. The commands the image runs.
"$bin" serve --help >/dev/null || fail "cors-proxy serve --help"
"$bin" --version | grep -Eqx 'cors-proxy [0-9]+\.[0-9]+\.[0-9]+' || fail "cors-proxy --version"
"$bin" check --config deploy/proxy.container.conf >/dev/null || fail "the image's default conf does not pass check"

# 4. Kubernetes manifests, with the same binary's `check` on the ConfigMap's conf. Any python3
# with PyYAML will do (Debian's python3-yaml is installed by scripts/ensure-deps.sh test).
py=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import yaml' 2>/dev/null; then py=$candidate; break; fi
done
[ -n "$py" ] || fail "no python3 with PyYAML to read the Kubernetes manifests (apt-get install python3-yaml)"
"$py" scripts/check-manifests.py --cors-proxy "$bin" || fail "deploy/kubernetes manifests"
echo "check-container: ok (static binary: $size_mb MB stripped, $(( $(stat -c %s "$built") / 1000000 )) MB with symbols and DWARF)"
