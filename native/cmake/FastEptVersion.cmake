# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors

# fastept_read_version(<out-var> <Directory.Build.props>): sets <out-var> to the MAJOR.MINOR.PATCH
# in the file's <Version> element, the one version of the NuGet packages and of libfastept.
function(fastept_read_version out_var props_file)
    if(NOT EXISTS "${props_file}")
        message(FATAL_ERROR "FastEpt: ${props_file} not found; it holds the version (<Version>) of the library")
    endif()
    file(READ "${props_file}" props)
    if(NOT props MATCHES "<Version>([0-9]+\\.[0-9]+\\.[0-9]+)</Version>")
        message(FATAL_ERROR "FastEpt: no <Version>MAJOR.MINOR.PATCH</Version> in ${props_file}")
    endif()
    set(${out_var} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()
