# Installation and the CMake package. After `cmake --install`, a consumer writes
#   find_package(pe CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE pe::runtime)      # the library (static) and include/pe
# and gets pe::schedules (the generated tables + record types, header-only), pe::pe-synth (the
# schedule compiler, to generate its own tables at build time) and pe::pe-run (the command line).
# Included from the top CMakeLists.txt when pe is the top-level project (PE_INSTALL).
include(CMakePackageConfigHelpers)

set(PE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/pe CACHE STRING "Where the pe CMake package is installed")
set(PE_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/pe)

# pe_runtime is a static library: its private link dependencies travel with it as $<LINK_ONLY:...>,
# so the small interface targets it links (warnings, CPU BLAS/LAPACKE, CUDA backend) are exported too.
set(pe_exported pe_runtime pe_schedules pe_plan pe_warnings pe_cpu_linalg)
set_target_properties(pe_runtime PROPERTIES EXPORT_NAME runtime)
set_target_properties(pe_schedules PROPERTIES EXPORT_NAME schedules)
set_target_properties(pe_warnings PROPERTIES EXPORT_NAME warnings)
set_target_properties(pe_cpu_linalg PROPERTIES EXPORT_NAME cpu_linalg)
set_target_properties(pe_plan PROPERTIES EXPORT_NAME plan)
if(TARGET pe_runtime_cuda)
  list(APPEND pe_exported pe_runtime_cuda)
  set_target_properties(pe_runtime_cuda PROPERTIES EXPORT_NAME runtime_cuda)
endif()
# The two command-line tools: pe-synth (generate and verify tables) and pe-run (.npy in and out).
foreach(tool pe-synth pe-run)
  if(TARGET ${tool})
    list(APPEND pe_exported ${tool})
    set_target_properties(${tool} PROPERTIES EXPORT_NAME ${tool})
  endif()
endforeach()

install(TARGETS ${pe_exported} EXPORT peTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/pe DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")
# The default tables: the header next to include/pe (pe::schedules puts include/ on the path), the JSON
# and the config that made them in share/pe, for `pe-synth diff` against a user's regenerated set.
if(EXISTS ${PROJECT_SOURCE_DIR}/schedules/pe_schedules.hpp)
  install(FILES ${PROJECT_SOURCE_DIR}/schedules/pe_schedules.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
foreach(data pe_schedules.json pe_synth_config.json)
  if(EXISTS ${PROJECT_SOURCE_DIR}/schedules/${data})
    install(FILES ${PROJECT_SOURCE_DIR}/schedules/${data} DESTINATION ${PE_INSTALL_DATADIR})
  endif()
endforeach()

install(EXPORT peTargets NAMESPACE pe:: DESTINATION ${PE_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/peConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/peConfig.cmake
                              INSTALL_DESTINATION ${PE_INSTALL_CMAKEDIR}
                              PATH_VARS PE_INSTALL_DATADIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/peConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/peConfig.cmake ${PROJECT_BINARY_DIR}/peConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/PeSchedules.cmake
        DESTINATION ${PE_INSTALL_CMAKEDIR})
