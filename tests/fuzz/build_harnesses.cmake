# cmake -DSOURCE_DIR=... -DBUILD_DIR=... -DGENERATOR=... -DCLANG=... [-DLAUNCHER=...] -P build_harnesses.cmake
# Configures (once) and builds the clang fuzz project; fails with the compiler's output.
foreach(var SOURCE_DIR BUILD_DIR GENERATOR CLANG)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "build_harnesses.cmake: -D${var}=... is required")
  endif()
endforeach()
set(launcher)
if(LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
if(NOT EXISTS ${BUILD_DIR}/CMakeCache.txt)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BUILD_DIR} -G ${GENERATOR}
                          -DCMAKE_CXX_COMPILER=${CLANG} ${launcher}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    file(REMOVE ${BUILD_DIR}/CMakeCache.txt)  # configure again next time
    message(FATAL_ERROR "fuzz harnesses: configuring with ${CLANG} failed (${rc})\n${out}\n${err}")
  endif()
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz harnesses: the build failed (${rc})\n${out}\n${err}")
endif()
