# The kernel's mock IOMMU device provider (kernel/iommufd/mock.c): test
# code, built into dirtyd_kernel (so into dirtyd) only with DIRTYD_TESTS;
# the VM tests run dirtyd on it.
#
# Included by kernel/CMakeLists.txt after dirtyd_kernel is defined.  Its
# test interface, iommufd_test.h, is made at build time (never at
# configure time) into the build tree: kernel/vm/iommufd-test-header.sh
# generates it from the linux-source-6.12 tarball the VM kernel is built
# from, in the download cache (cmake/linux-headers.cmake).
# DIRTYD_IOMMUFD_TEST_H_DIR tells tests/vm/ where it is ("": no mock).
if(NOT DIRTYD_TESTS)
  set(DIRTYD_IOMMUFD_TEST_H_DIR "" CACHE INTERNAL
      "Where iommufd_test.h of linux-source-6.12 is made")
  return()
endif()
include(${PROJECT_SOURCE_DIR}/cmake/linux-headers.cmake)
set(DIRTYD_IOMMUFD_TEST_H_DIR ${CMAKE_CURRENT_BINARY_DIR}/iommufd-test
    CACHE INTERNAL "Where iommufd_test.h of linux-source-6.12 is made")
dirtyd_linux_headers(dirtyd_iommufd_test_h
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/iommufd-test-header.sh
  OUTDIR ${DIRTYD_IOMMUFD_TEST_H_DIR}
  FILES iommufd_test.h)
target_sources(dirtyd_kernel PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/../iommufd/mock.c
  ${DIRTYD_IOMMUFD_TEST_H_DIR}/iommufd_test.h)
target_include_directories(dirtyd_kernel PRIVATE ${DIRTYD_IOMMUFD_TEST_H_DIR})
target_compile_definitions(dirtyd_kernel PRIVATE DIRTYD_MOCK_PROVIDER=1)
