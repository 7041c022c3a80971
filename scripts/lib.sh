# Shared by scripts/run, scripts/test and .ci/run: install what is missing, build.
# Sourced, not executed.

MR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages the build and the test suite need (the last line: bench/peers/, the reference
# servers the matrix measures and the tests check). golang-github-containers-common holds the
# container runtime's default seccomp profile (/usr/share/containers/seccomp.json) that
# scripts/make-seccomp-profile turns into deploy/seccomp/ and its test regenerates.
MR_PACKAGES=(cmake make g++ pkg-config libboost-program-options-dev libspdlog-dev libfmt-dev
  libgtest-dev googletest libgmock-dev libbenchmark-dev python3 prometheus procps util-linux
  iproute2 python3-yaml nlohmann-json3-dev strace libcpp-httplib-dev zlib1g-dev nodejs systemd
  liburing-dev golang-github-containers-common
  libboost-dev libuv1-dev libevent-dev golang-go python3-uvloop)

# Commands whose Debian package is installed only when the command is missing: the machine may
# carry the command from another package that conflicts with Debian's (NodeSource's nodejs
# bundles npm and conflicts with Debian's npm; Google's kubectl package owns /usr/bin/kubectl like
# Debian's kubernetes-client). COMMAND:PACKAGE.
MR_COMMAND_PACKAGES=(npm:npm kubectl:kubernetes-client)

# What scripts/cross-test ARCH needs besides MR_PACKAGES: Debian's cross compiler, qemu-user
# (no binfmt_misc registration: the tests run under qemu-ARCH explicitly) and the -dev packages
# of the target architecture through multiarch (mr_add_architecture first). nlohmann-json is
# header-only, one package for all architectures (in MR_PACKAGES); liburing for the io_uring
# backend, built when found (its liburing.a for the static build).
MR_CROSS_PACKAGES_arm64=(g++-aarch64-linux-gnu qemu-user file libboost-program-options-dev:arm64
  libspdlog-dev:arm64 libfmt-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64
  libbenchmark-dev:arm64 zlib1g-dev:arm64 liburing-dev:arm64)

mr_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Installs the Debian packages given (or MR_PACKAGES, and MR_COMMAND_PACKAGES whose command is
# missing) that are not installed yet.
mr_install_packages() {
  local wanted=("$@")
  local missing=()
  if ((${#wanted[@]} == 0)); then
    wanted=("${MR_PACKAGES[@]}")
    local entry
    for entry in "${MR_COMMAND_PACKAGES[@]}"; do
      command -v "${entry%%:*}" >/dev/null || missing+=("${entry#*:}")
    done
  fi
  for p in "${wanted[@]}"; do
    # Node from elsewhere (NodeSource's nodejs carries npm and conflicts with Debian's) will do:
    # the histogram decoding test only needs the commands.
    [[ $p == nodejs ]] && command -v node >/dev/null && continue
    [[ $p == npm ]] && command -v npm >/dev/null && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  mr_log "installing: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# mr_add_architecture ARCH: lets dpkg install ARCH's packages beside the machine's own
# (Debian multiarch); the next mr_install_packages fetches its package lists.
mr_add_architecture() {
  [[ $1 == "$(dpkg --print-architecture)" ]] && return 0
  dpkg --print-foreign-architectures | grep -qx "$1" && return 0
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  mr_log "adding the dpkg architecture $1"
  "${sudo[@]}" dpkg --add-architecture "$1"
}

# mr_build DIR [cmake args...]: configure and build into DIR.
# MR_BUILD_TARGETS (space separated) limits what is built; default everything.
mr_build() {
  local dir="$1"
  shift
  local started=$SECONDS
  cmake -S "$MR_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  local targets=()
  for t in ${MR_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
  mr_log "built $dir in $((SECONDS - started)) s"
}
