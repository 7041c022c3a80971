# multireactor echo-server image. Builds Release and runs the unit tests in a build stage; the
# runtime stage holds only the shared libraries, echo-server, echo-bench and the configuration.
#
#   podman build --format docker -t multireactor .     (docker build -t multireactor . works too)
#   podman run --rm -p 9999:9999 -p 9100:9100 -e MR_WORKERS=4 multireactor
#
# Options come from /etc/multireactor/server.conf (mount your own over it), from MR_<NAME>
# environment variables, and from --name value arguments after the image name, in that order of
# precedence (later wins). `--format docker` keeps the HEALTHCHECK under podman/buildah.

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake make g++ pkg-config \
       libboost-program-options-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev \
       googletest libbenchmark-dev nlohmann-json3-dev libcpp-httplib-dev zlib1g-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Tests labelled stress, container, prometheus or deploy need more than this stage has (time,
# podman, a Prometheus binary, python3-yaml); the host's scripts/test runs them. One test at a
# time, as scripts/test does.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
    && cmake --build build -j"$(nproc)" \
    && cd build \
    && ctest --output-on-failure --timeout 300 -LE 'stress|container|prometheus|deploy'
# The image's configuration is configs/server.conf with the admin listener on every address of
# the container (the file's own default, 127.0.0.1, would be unreachable through a published
# port). A file mounted over it is taken as it is.
RUN mkdir -p /out \
    && cp build/echo-server build/echo-bench /out/ \
    && strip /out/echo-server /out/echo-bench \
    && sed 's/^admin_bind = .*/admin_bind = 0.0.0.0/' configs/server.conf > /out/server.conf \
    && grep -qx 'admin_bind = 0.0.0.0' /out/server.conf \
    && grep -qx 'bind = 0.0.0.0' /out/server.conf \
    && grep -qx 'workers = 0' /out/server.conf

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends libboost-program-options1.74.0 libfmt9 \
       libspdlog1.10 libcpp-httplib0.11 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin multireactor
COPY --from=build /out/echo-server /out/echo-bench /usr/local/bin/
COPY --from=build /out/server.conf /etc/multireactor/server.conf
# Fail the build here, not at run time, when a shared library is missing from the list above.
RUN ! ldd /usr/local/bin/echo-server /usr/local/bin/echo-bench | grep 'not found' \
    && echo-server --config /etc/multireactor/server.conf --check-config >/dev/null
ENV MR_CONFIG=/etc/multireactor/server.conf
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9999 9100
# echo-server is PID 1 here and handles SIGTERM itself: it stops accepting, lets workers flush for
# up to shutdown_timeout_ms, logs the final stats and exits 0. It starts no child processes, so
# there is nothing to reap and no init is needed.
STOPSIGNAL SIGTERM
# GET /healthz on the admin port of the same configuration (file + environment), no curl needed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/echo-server", "--health-check"]
ENTRYPOINT ["/usr/local/bin/echo-server"]
