# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors

# install() rules for libfastept, included by native/CMakeLists.txt after the fastept target:
#   <prefix>/lib/libfastept.so, <prefix>/include/fastept.h and fastept_inline.h,
#   <prefix>/lib/cmake/FastEpt/FastEpt{Config,ConfigVersion,Targets}.cmake (FastEpt::fastept),
#   <prefix>/lib/pkgconfig/fastept.pc.
# Install with: cmake --install native/build --prefix <prefix>

include(CMakePackageConfigHelpers)

set(FASTEPT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/FastEpt)

install(TARGETS fastept EXPORT FastEptTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/include/fastept.h ${CMAKE_CURRENT_SOURCE_DIR}/include/fastept_inline.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT FastEptTargets NAMESPACE FastEpt:: DESTINATION ${FASTEPT_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/FastEptConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/FastEptConfig.cmake
    INSTALL_DESTINATION ${FASTEPT_CMAKE_DIR})
# 0.x: a minor version may break the ABI, so only the same MAJOR.MINOR is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/FastEptConfigVersion.cmake
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/FastEptConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/FastEptConfigVersion.cmake
    DESTINATION ${FASTEPT_CMAKE_DIR})

# fastept.pc is relocatable: prefix is found from the .pc file's own folder (${pcfiledir}), so a
# `cmake --install --prefix <dir>` anywhere gives a working file. Absolute GNUInstallDirs values
# (a /usr install with an absolute libdir) are written as they are.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(FASTEPT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(FASTEPT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
    file(RELATIVE_PATH FASTEPT_PC_UP "/fastept-prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/fastept-prefix")
    string(REGEX REPLACE "/$" "" FASTEPT_PC_UP "${FASTEPT_PC_UP}")
    set(FASTEPT_PC_PREFIX "\${pcfiledir}/${FASTEPT_PC_UP}")
    set(FASTEPT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(FASTEPT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
    set(FASTEPT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/fastept.pc.in ${CMAKE_CURRENT_BINARY_DIR}/fastept.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fastept.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
