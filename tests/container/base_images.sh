#!/usr/bin/env bash
# Stand-ins for the base images the Dockerfiles name, made from Debian's packages where no
# container registry can be reached, into the store of CONTAINER_ENGINE (podman, the default, or
# docker) with its `import`. Each is skipped if the engine already holds it.
#   debian:bookworm-slim        debootstrap --variant=minbase bookworm, slimmed as the official one
#   python:3.11-slim-bookworm   the same plus Debian's python3 (3.11), venv and CA certificates
# docs/deploy.md says where they differ from the images a user pulls.
set -euo pipefail

ENGINE=${CONTAINER_ENGINE:-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm
PYTHON_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
HOST_CA=/etc/ssl/certs/ca-certificates.crt

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# What the official images' build (debuerreotype) adds to minbase: apt follows point releases
# and security updates, keeps no package caches or translations, and the slim images install no
# docs, man pages or locales.
slim() {
    rm -f "$1/etc/apt/sources.list"
    cat >"$1/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    cat >"$1/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    echo 'Acquire::Languages "none";' >"$1/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Acquire::GzipIndexes "true";' >"$1/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' \
        >"$1/etc/apt/apt.conf.d/docker-autoremove-suggests"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/locale/*' >"$1/etc/dpkg/dpkg.cfg.d/docker"
    find "$1/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/* \
        "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb \
        "$1"/var/log/*.log
}

# `podman image exists` has no Docker counterpart; `image inspect` answers on both.
present() {
    "$ENGINE" image inspect "$1" >/dev/null 2>&1
}

# $1 image, $2 packages to add to minbase ("" for none), then `import --change` options (the
# same on both engines).
make_image() {
    local image=$1 include=$2
    shift 2
    if present "$image"; then
        echo "base image $image: present"
        return
    fi
    echo "base image $image ($ENGINE): debootstrap bookworm${include:+ + $include}"
    local root="$work/${image##*:}"
    debootstrap --variant=minbase ${include:+--include="$include"} \
        --cache-dir="$work/debs" bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log"; exit 1; }
    slim "$root"
    # Where the host trusts a TLS-inspecting proxy, pip in a build must too. Podman mounts the
    # host's bundle into each build (stack.py); Docker's builder mounts nothing, so the stand-in
    # base carries it in place of Debian's (the Debian pip of the venv reads that file).
    if [ "$ENGINE" = docker ] && [ -n "$include" ] && [ -f "$HOST_CA" ]; then
        cp "$HOST_CA" "$root/etc/ssl/certs/ca-certificates.crt"
    fi
    local quiet=()
    [ "$ENGINE" = podman ] && quiet=(--quiet)  # Docker's import has no such flag, nor progress
    tar -C "$root" --numeric-owner -c . | "$ENGINE" import "${quiet[@]}" "$@" - "$image" >/dev/null
}

mkdir -p "$work/debs"
make_image "$DEBIAN_IMAGE" "" --change 'CMD ["bash"]'
make_image "$PYTHON_IMAGE" "$PYTHON_PACKAGES" \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]'
