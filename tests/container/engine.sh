#!/usr/bin/env bash
# Runs a command (the container tests) with the engine of CONTAINER_ENGINE (docker|podman) ready:
# for docker, a daemon answering `docker info`, started here when none does and stopped again
# when the command ends (only that one); then the base images the Dockerfiles name
# (base_images.sh, where debootstrap is installed and we are root). The command's status is
# this script's.
set -euo pipefail

ENGINE=${CONTAINER_ENGINE:-docker}
DOCKERD_LOG=${DOCKERD_LOG:-${TMPDIR:-/tmp}/bigru-serve-dockerd.log}
DEADLINE=${DOCKERD_DEADLINE:-90}  # seconds for a cold dockerd to answer (containerd first)
started=""

# The flags this kind of machine allows: no iptables (published ports go through docker-proxy),
# vfs (no overlayfs inside this machine's filesystem), cgroupfs (no systemd).
start_dockerd() {
    echo "no Docker daemon answers: starting dockerd (log: $DOCKERD_LOG)"
    dockerd --iptables=false --storage-driver=vfs --exec-opt native.cgroupdriver=cgroupfs \
        >"$DOCKERD_LOG" 2>&1 &
    started=$!
    local deadline=$((SECONDS + DEADLINE))
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$started" 2>/dev/null; then
            started=""
            echo "dockerd exited while starting:" >&2
            tail -20 "$DOCKERD_LOG" >&2
            exit 1
        fi
        if ((SECONDS > deadline)); then
            echo "dockerd does not answer within ${DEADLINE} s:" >&2
            tail -20 "$DOCKERD_LOG" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "dockerd $(docker version --format '{{.Server.Version}}') answers (pid $started)"
}

# dockerd stops its containers and its containerd on SIGTERM; SIGKILL only past a deadline.
stop_dockerd() {
    [ -n "$started" ] || return 0
    echo "stopping the dockerd started here (pid $started)"
    kill -TERM "$started" 2>/dev/null || return 0
    local deadline=$((SECONDS + 60))
    while kill -0 "$started" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            echo "dockerd (pid $started) still running after 60 s: SIGKILL" >&2
            kill -KILL "$started" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    started=""
}
trap stop_dockerd EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

case "$ENGINE" in
    docker)
        if ! docker info >/dev/null 2>&1; then
            if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
                start_dockerd
            else
                echo "no Docker daemon answers and dockerd cannot be started here" \
                    "(not root, or not installed: make container-test installs docker.io)" >&2
            fi
        fi
        ;;
    podman) ;;
    *)
        echo "CONTAINER_ENGINE must be docker or podman, not '$ENGINE'" >&2
        exit 2
        ;;
esac

if [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null && command -v "$ENGINE" >/dev/null; then
    CONTAINER_ENGINE=$ENGINE "$(dirname "$0")/base_images.sh"
fi

status=0
CONTAINER_ENGINE=$ENGINE "$@" || status=$?
exit "$status"
