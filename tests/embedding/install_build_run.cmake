# cmake -DPE_BUILD_DIR=... -DEXAMPLE_SOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... -DCXX_COMPILER=...
#       -DBUILD_TYPE=... -P install_build_run.cmake
# Fails (non-zero exit, with the failing step's output) when any step fails.
foreach(var PE_BUILD_DIR EXAMPLE_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER BUILD_TYPE)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_build_run.cmake: -D${var}=... is required")
  endif()
endforeach()

# A fresh prefix and example build every time, so nothing from an earlier run can make this pass.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/example-build)

function(step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "embedding test: ${name} failed (${rc})\n${out}\n${err}")
  endif()
  message(STATUS "embedding test: ${name}: ok\n${out}")
endfunction()

step("cmake --install" ${CMAKE_COMMAND} --install ${PE_BUILD_DIR} --prefix ${prefix} --config ${BUILD_TYPE})
# The installed command line runs from the prefix alone (its built-in example: roots for p = 2 and 4).
step("run the installed pe-run" ${prefix}/bin/pe-run demo)
step("configure the example" ${CMAKE_COMMAND} -S ${EXAMPLE_SOURCE_DIR} -B ${build} -G ${GENERATOR}
     -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_PREFIX_PATH=${prefix}
     -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
step("build the example" ${CMAKE_COMMAND} --build ${build} --config ${BUILD_TYPE})
step("run the example" ${build}/pe-embed-example)
