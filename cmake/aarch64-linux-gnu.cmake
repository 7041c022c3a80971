# Cross-compiles for 64-bit Arm Linux with Debian's cross toolchain (g++-aarch64-linux-gnu) and
# the :arm64 -dev packages of Debian multiarch (dpkg --add-architecture arm64), which install into
# /usr/lib/aarch64-linux-gnu beside the build machine's own. ctest runs the test executables under
# qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), so no binfmt_misc registration is needed.
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DMR_STATIC=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: packages' CMake configs live in /usr/lib/aarch64-linux-gnu/cmake, headers of
# arch-independent packages in /usr/include. Programs (python3, the emulator) are the host's.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config (pkg_check_modules: liburing, the bench peers' libuv and libevent) reads the target's
# .pc files only: the build machine's would hand the cross linker libraries it cannot use. A
# package without its :arm64 -dev installed is then simply not found.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# -L: where a dynamically linked arm64 executable finds its loader and libraries (the multiarch
# ones are under / itself); static executables (MR_STATIC) need none.
find_program(MR_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(MR_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${MR_QEMU_AARCH64};-L;/")
endif()
