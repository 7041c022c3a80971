# multireactor echo-server image, for linux/amd64 and linux/arm64. The build stage runs on the
# build machine's own architecture and cross-compiles for the target (Debian's cross g++ and the
# target's -dev packages through multiarch), so an arm64 image needs no emulated build step. The
# binaries are static (glibc, libstdc++, Boost.Program_options; spdlog and fmt header-only:
# MR_STATIC), and the runtime stage is FROM scratch: the two binaries, the configuration and a
# passwd entry for uid 10001. No shell, no package manager, no shared library.
#
#   podman build --format docker -t multireactor .                       (docker build works too)
#   podman build --format docker --platform linux/arm64 --build-arg BUILDPLATFORM=linux/amd64 \
#     -t multireactor:arm64 .          (buildah 1.28 needs BUILDPLATFORM given; BuildKit does not)
#   podman run --rm -p 9999:9999 -p 9100:9100 -e MR_WORKERS=4 multireactor
#
# Options come from /etc/multireactor/server.conf (mount your own over it), from MR_<NAME>
# environment variables, and from --name value arguments after the image name, in that order of
# precedence (later wins). `--format docker` keeps the HEALTHCHECK under podman/buildah.
#
# The test suite is not run here: scripts/test runs it natively, scripts/cross-test arm64 runs it
# on static arm64 builds (this image's link mode) under qemu-user, and scripts/container-test
# checks the built image itself. Running it here would need emulation for arm64 and a second
# full build of the suite per architecture.

FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
ARG BUILDARCH
ARG TARGETARCH
# Native: the machine's g++. Cross: g++-<triple> and the target's -dev packages (multiarch).
# Google Benchmark only because bench/ requires it at configure time (mr-microbench, not built);
# nlohmann-json (header-only, one package for every architecture) and zlib for echo-bench; liburing
# for the io_uring backend, built when it is found (liburing-dev ships liburing.a for MR_STATIC).
RUN set -e; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-linux-gnu ;; \
      arm64) triple=aarch64-linux-gnu ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH'" >&2; exit 1 ;; \
    esac; \
    arch=; compiler=g++; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      dpkg --add-architecture "$TARGETARCH"; arch=":$TARGETARCH"; compiler="g++-$triple"; \
    fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends cmake make pkg-config "$compiler" \
      "libboost-program-options-dev$arch" "libspdlog-dev$arch" "libfmt-dev$arch" \
      "libbenchmark-dev$arch" nlohmann-json3-dev "zlib1g-dev$arch" "liburing-dev$arch"; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# /out/rootfs is the whole runtime file system. Its configuration is configs/server.conf with the
# admin listener on every address of the container (the file's own default, 127.0.0.1, would be
# unreachable through a published port); a file mounted over it is taken as it is.
RUN set -e; \
    toolchain=; strip=strip; \
    if [ "$TARGETARCH" = arm64 ] && [ "$BUILDARCH" != arm64 ]; then \
      toolchain=-DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake; \
      strip=aarch64-linux-gnu-strip; \
    elif [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      echo "no toolchain file for $BUILDARCH -> $TARGETARCH" >&2; exit 1; \
    fi; \
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMR_STATIC=ON -DMR_BUILD_TESTS=OFF $toolchain; \
    cmake --build build -j"$(nproc)" --target echo-server echo-bench; \
    root=/out/rootfs; \
    mkdir -p $root/usr/local/bin $root/etc/multireactor; \
    $strip -o $root/usr/local/bin/echo-server build/echo-server; \
    $strip -o $root/usr/local/bin/echo-bench build/echo-bench; \
    sed 's/^admin_bind = .*/admin_bind = 0.0.0.0/' configs/server.conf \
      > $root/etc/multireactor/server.conf; \
    grep -qx 'admin_bind = 0.0.0.0' $root/etc/multireactor/server.conf; \
    grep -qx 'bind = 0.0.0.0' $root/etc/multireactor/server.conf; \
    grep -qx 'workers = 0' $root/etc/multireactor/server.conf; \
    echo 'multireactor:x:10001:10001:multireactor:/nonexistent:/sbin/nologin' > $root/etc/passwd; \
    echo 'multireactor:x:10001:' > $root/etc/group; \
    chmod 644 $root/etc/passwd $root/etc/group $root/etc/multireactor/server.conf; \
    if [ "$TARGETARCH" = "$BUILDARCH" ]; then \
      $root/usr/local/bin/echo-server --config $root/etc/multireactor/server.conf \
        --check-config >/dev/null; \
    fi

FROM scratch
COPY --from=build /out/rootfs/ /
ENV MR_CONFIG=/etc/multireactor/server.conf
LABEL org.opencontainers.image.title=multireactor
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9999 9100
# echo-server is PID 1 here and handles SIGTERM itself: it stops accepting, lets workers flush for
# up to shutdown_timeout_ms, logs the final stats and exits 0. It starts no child processes, so
# there is nothing to reap and no init is needed. It writes nothing to the file system (logs go
# to stderr), so the root file system may be read-only.
STOPSIGNAL SIGTERM
# GET /healthz on the admin port of the same configuration (file + environment), no curl needed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/echo-server", "--health-check"]
ENTRYPOINT ["/usr/local/bin/echo-server"]
