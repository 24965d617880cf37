# Which headers a target's users may include.
# Owns: no library gives its users the whole source tree.
#
# Every header is spelled from the top of the source tree
# ("kernel/backend.h"), so a library that put the whole tree on its users'
# include path would let them reach everything.  Instead
#
#   dirtyd_header_tree(<target> <path>...)
#
# builds a tree of symbolic links in the build tree,
# ${CMAKE_BINARY_DIR}/include/<target>/<path> -> <source>/<path> (a header
# or a folder), and puts it on the include path of <target>'s users
# (INTERFACE): they reach those headers, spelled as everywhere, and no
# other.  <target> itself still compiles with the whole tree (PRIVATE).
# A header added to a library's interface is added to its list here.
function(dirtyd_header_tree target)
  set(root ${CMAKE_BINARY_DIR}/include/${target})
  foreach(path ${ARGN})
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/${path})
      message(FATAL_ERROR "dirtyd_header_tree(${target}): no ${path}")
    endif()
    get_filename_component(dir ${root}/${path} DIRECTORY)
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${path} ${root}/${path} SYMBOLIC)
  endforeach()
  target_include_directories(${target} INTERFACE ${root}
                             PRIVATE ${PROJECT_SOURCE_DIR})
endfunction()
