# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors

# CTest's fastept.install.consumer: installs the built libfastept into a scratch prefix, then
# builds native/tests/consumer/consumer.c against that INSTALLED copy twice, with
# find_package(FastEpt) and with a plain compiler line from pkg-config, and runs both.
# Run as: cmake -DBUILD_DIR=<native build> -DSOURCE_DIR=<native> -DC_COMPILER=<cc>
#               -DEXPECTED_VERSION=<x.y.z> [-DCONFIG=Release] -P run_consumer_test.cmake
# Exits 77 (CTest: skipped) only when pkg-config is missing, after the find_package half passed.

foreach(var BUILD_DIR SOURCE_DIR C_COMPILER EXPECTED_VERSION)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "run_consumer_test.cmake: -D${var}=... is required")
    endif()
endforeach()
if(NOT DEFINED CONFIG)
    set(CONFIG Release)
endif()

set(work ${BUILD_DIR}/consumer-test)
set(prefix ${work}/prefix)
file(REMOVE_RECURSE ${work})
file(MAKE_DIRECTORY ${work})

function(run_step what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "consumer test: ${what} failed (${rc}):\n${out}\n${err}")
    endif()
    set(step_output "${out}" PARENT_SCOPE)
endfunction()

# 1. Install.
run_step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --config ${CONFIG})
file(GLOB_RECURSE installed RELATIVE ${prefix} ${prefix}/*)
list(SORT installed)
message(STATUS "installed: ${installed}")
foreach(expected include/fastept.h FastEptConfig.cmake FastEptConfigVersion.cmake FastEptTargets.cmake fastept.pc)
    string(REGEX MATCH "(^|;)[^;]*${expected}(;|$)" hit "${installed}")
    if(NOT hit)
        message(FATAL_ERROR "consumer test: the install has no ${expected} (got: ${installed})")
    endif()
endforeach()

# 2. find_package(FastEpt) from an out-of-tree project.
run_step("configuring the find_package consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${work}/find-package
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_BUILD_TYPE=${CONFIG})
run_step("building the find_package consumer" ${CMAKE_COMMAND} --build ${work}/find-package --config ${CONFIG})
find_program(consumer_exe fastept_consumer PATHS ${work}/find-package ${work}/find-package/${CONFIG} NO_DEFAULT_PATH REQUIRED)
run_step("running the find_package consumer" ${consumer_exe})
if(NOT step_output MATCHES "consumer: ok ${EXPECTED_VERSION} ")
    message(FATAL_ERROR "consumer test: find_package consumer printed: ${step_output}")
endif()
message(STATUS "find_package: ${step_output}")

# 3. pkg-config: one compiler line, no build system.
find_program(pkg_config NAMES pkg-config pkgconf)
if(NOT pkg_config)
    message(STATUS "consumer test: pkg-config not found; the pkg-config half is skipped (apt-get install pkg-config)")
    cmake_language(EXIT 77)
endif()
set(ENV{PKG_CONFIG_PATH} "")
file(GLOB_RECURSE pc_files ${prefix}/*/fastept.pc)
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
run_step("pkg-config --modversion fastept" ${pkg_config} --modversion fastept)
string(STRIP "${step_output}" pc_version)
if(NOT pc_version STREQUAL EXPECTED_VERSION)
    message(FATAL_ERROR "consumer test: fastept.pc says version ${pc_version}, the package is ${EXPECTED_VERSION}")
endif()
run_step("pkg-config --cflags --libs fastept" ${pkg_config} --cflags --libs fastept)
string(STRIP "${step_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run_step("pkg-config --variable=libdir fastept" ${pkg_config} --variable=libdir fastept)
string(STRIP "${step_output}" libdir)
run_step("compiling the pkg-config consumer" ${C_COMPILER} -std=c11 -Wall -Wextra -Werror
    "-DFASTEPT_EXPECTED_VERSION=\"${EXPECTED_VERSION}\"" ${SOURCE_DIR}/tests/consumer/consumer.c
    ${flags} -Wl,-rpath,${libdir} -o ${work}/consumer-pkg-config)
run_step("running the pkg-config consumer" ${work}/consumer-pkg-config)
if(NOT step_output MATCHES "consumer: ok ${EXPECTED_VERSION} ")
    message(FATAL_ERROR "consumer test: pkg-config consumer printed: ${step_output}")
endif()
message(STATUS "pkg-config (${flags}): ${step_output}")
