# Install the library and export the CMake package: find_package(kmm CONFIG REQUIRED) then
# target_link_libraries(app PRIVATE kmm::kmm).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS kmm EXPORT kmmTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/allocator/include/kmm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT kmmTargets NAMESPACE kmm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kmm)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kmmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kmmConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kmm)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kmmConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kmmConfig.cmake ${PROJECT_BINARY_DIR}/kmmConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kmm)
