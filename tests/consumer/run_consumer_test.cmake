# cmake -P script: install the build into WORK_DIR/prefix, configure and build tests/consumer
# against it with find_package, run the result. Any failing step fails the test.
file(REMOVE_RECURSE ${WORK_DIR})
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
if(NOT EXISTS ${WORK_DIR}/prefix/include/multireactor/reactor.hpp)
  message(FATAL_ERROR "the install has no include/multireactor/reactor.hpp")
endif()
set(flags "")
if(SANITIZE)
  # The installed library was built with the sanitizers: its consumer links their runtimes.
  set(flags "-fsanitize=${SANITIZE}")
endif()
step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build
  "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${flags}"
  -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_CXX_COMPILER=${CXX}
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
# Cross builds (scripts/cross-test) run it under the emulator their tests run under.
step(${EMULATOR} ${WORK_DIR}/build/consumer)
