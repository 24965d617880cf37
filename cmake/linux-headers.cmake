# Headers made from the pinned linux-source-6.12 tarball, at build time.
# Owns: configuring writes nothing outside the build tree (what comes from
# linux-source-6.12 is fetched and made while building).
#
# dirtyd_linux_headers(<target> SCRIPT <script> OUTDIR <dir> FILES <file>...)
# adds the custom target <target>, whose outputs are <dir>/<file>... in the
# build tree.  Building it runs <script> (scripts/linux-uapi.sh or
# kernel/vm/iommufd-test-header.sh), which fetches the tarball and prepares
# the headers in the download cache, ${XDG_CACHE_HOME:-~/.cache}/dirtyd
# (scripts/linux-source.sh; scripts/test.sh relies on it between runs),
# and prints that directory; the files are copied from there.  Configuring
# runs nothing and writes nothing outside the build tree.  A target whose
# sources include one of the files depends on it (list them as sources).
function(dirtyd_linux_headers target)
  cmake_parse_arguments(arg "" "SCRIPT;OUTDIR" "FILES" ${ARGN})
  set(outputs "")
  foreach(f ${arg_FILES})
    list(APPEND outputs ${arg_OUTDIR}/${f})
  endforeach()
  string(REPLACE ";" "," files "${arg_FILES}")
  add_custom_command(OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -DSCRIPT=${arg_SCRIPT} -DOUTDIR=${arg_OUTDIR}
            -DFILES=${files}
            -P ${PROJECT_SOURCE_DIR}/cmake/linux-headers-copy.cmake
    DEPENDS ${arg_SCRIPT} ${PROJECT_SOURCE_DIR}/scripts/linux-source.sh
            ${PROJECT_SOURCE_DIR}/kernel/vm/kernels
            ${PROJECT_SOURCE_DIR}/cmake/linux-headers-copy.cmake
    COMMENT "Headers from linux-source-6.12 (${target})"
    VERBATIM)
  add_custom_target(${target} DEPENDS ${outputs})
endfunction()
