# The kernel's mock IOMMU test interface for kernel/iommufd/mock.c.
#
# Included by kernel/CMakeLists.txt after dirtyd_kernel is defined.
# kernel/vm/iommufd-test-header.sh generates iommufd_test.h from the
# linux-source-6.12 tarball the VM kernel is built from (cached outside the
# work tree) and prints its directory; with it, mock.c is the real mock
# provider, without it (the source could not be fetched) a stub that refuses to open.
# DIRTYD_IOMMUFD_TEST_H_DIR tells tests/vm/ whether the mock exists.
set(_dirtyd_mock_script ${CMAKE_CURRENT_LIST_DIR}/iommufd-test-header.sh)
execute_process(
  COMMAND sh ${_dirtyd_mock_script}
  OUTPUT_VARIABLE _dirtyd_mock_dir
  ERROR_VARIABLE _dirtyd_mock_err
  RESULT_VARIABLE _dirtyd_mock_rc
  OUTPUT_STRIP_TRAILING_WHITESPACE)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${_dirtyd_mock_script} ${PROJECT_SOURCE_DIR}/scripts/linux-source.sh
  ${PROJECT_SOURCE_DIR}/kernel/vm/kernels)
if(_dirtyd_mock_rc EQUAL 0 AND EXISTS "${_dirtyd_mock_dir}/iommufd_test.h")
  message(STATUS "Mock IOMMU test interface: ${_dirtyd_mock_dir}")
  target_include_directories(dirtyd_kernel PRIVATE ${_dirtyd_mock_dir})
  target_compile_definitions(dirtyd_kernel PRIVATE DIRTYD_HAVE_IOMMUFD_TEST_H=1)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
    ${_dirtyd_mock_dir}/iommufd_test.h)
  set(DIRTYD_IOMMUFD_TEST_H_DIR ${_dirtyd_mock_dir} CACHE INTERNAL
    "Where iommufd_test.h of linux-source-6.12 was generated")
else()
  message(STATUS "Mock IOMMU device provider disabled: ${_dirtyd_mock_err}")
  set(DIRTYD_IOMMUFD_TEST_H_DIR "" CACHE INTERNAL
    "Where iommufd_test.h of linux-source-6.12 was generated")
endif()
