# `cmake --install` puts the engine (libmultireactor.a, include/multireactor) and a CMake
# package in the prefix: find_package(multireactor) then gives multireactor::reactor.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS mr_reactor mr_system EXPORT multireactorTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/multireactor
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS echo-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT multireactorTargets NAMESPACE multireactor::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/multireactor)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/multireactorConfig.cmake.in
  ${PROJECT_BINARY_DIR}/multireactorConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/multireactor)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/multireactorConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/multireactorConfig.cmake
  ${PROJECT_BINARY_DIR}/multireactorConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/multireactor)
