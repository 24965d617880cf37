# Client tests (included by tests/integration/CMakeLists.txt).
#
#   test_client_unit      libdirty against a scripted peer: error paths a
#                         correct dirtyd never takes (no daemon needed)
#   test_client_libdirty  libdirty end to end against the real dirtyd
#   test_client_dirtyctl  every dirtyctl command, with and without --json,
#                         and the libdirty example program
#   test_client_migrate   dirtyd-migrate converges on a guest under DMA
#                         load, and reports when it cannot
#   test_client_install   cmake --install: header (clean in C99 and
#                         C++11), libraries (libdirty.sym's functions
#                         exported, nothing else, .so and .a), pkg-config
#                         file, a man page per function; a program builds
#                         against them
#   test_metrics          METRICS through real Prometheus parsers: exact
#                         figures after known writes, a second uid's view
#
# JSON is checked by test_client_json (no jq needed); the keys both tools
# print against dirtyctl(1)'s vocabulary by json_keys.py.  The OpenMetrics
# text by python3-prometheus-client's parser (scripts/deps.sh: without it
# the metrics checks would vanish unseen, so configuring fails instead)
# and, where it is installed, by promtool, Prometheus's own text parser (as
# node_exporter's textfile collector reads): package prometheus, not
# installed by deps.sh since it brings a Prometheus server that starts.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
set(DIRTYD_METRICS_PYTHON "")
foreach(py ${Python3_EXECUTABLE} /usr/bin/python3)
  execute_process(COMMAND ${py} -c "import prometheus_client.openmetrics.parser"
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    set(DIRTYD_METRICS_PYTHON ${py})
    break()
  endif()
endforeach()
if(NOT DIRTYD_METRICS_PYTHON)
  message(FATAL_ERROR "the metrics tests need python3-prometheus-client: "
          "run scripts/deps.sh")
endif()
find_program(DIRTYD_PROMTOOL promtool)
if(NOT DIRTYD_PROMTOOL)
  set(DIRTYD_PROMTOOL "")
endif()

add_executable(test_client_json test_client_json.c)

add_executable(test_client_unit test_client_unit.c)
# the static library, and the codec it hides (dirtyd_protocol), which the
# scripted peer speaks
target_link_libraries(test_client_unit PRIVATE libdirty_static
                      dirtyd_protocol PkgConfig::CRITERION)
add_test(NAME test_client_unit
         COMMAND test_client_unit --jobs=2 --short-filename)
set_tests_properties(test_client_unit PROPERTIES
                     TIMEOUT 120 LABELS "integration;clients")

if(DIRTYD_SANITIZE)
  set(client_cflags "-fsanitize=address,undefined")
else()
  set(client_cflags "")
endif()
add_test(NAME test_client_install
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_client_install.sh
                 ${CMAKE_COMMAND} ${CMAKE_BINARY_DIR} ${CMAKE_C_COMPILER}
                 ${CMAKE_SOURCE_DIR} "${client_cflags}")
set_tests_properties(test_client_install PROPERTIES
                     TIMEOUT 300 LABELS "integration;clients")

if(NOT TARGET dirtyd)
  message(WARNING "client tests: no dirtyd target, end-to-end tests skipped")
  return()
endif()

add_executable(test_client_libdirty test_client_libdirty.c)
# the shared library: what a VMM links, through its exported symbols only
target_link_libraries(test_client_libdirty PRIVATE libdirty dirtyd_harness
                      PkgConfig::CRITERION)
add_test(NAME test_client_libdirty
         COMMAND test_client_libdirty --jobs=2 --short-filename)
set_tests_properties(test_client_libdirty PROPERTIES
                     ENVIRONMENT "DIRTYD_BIN=$<TARGET_FILE:dirtyd>"
                     TIMEOUT 300 LABELS "integration;clients")

add_test(NAME test_client_dirtyctl
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_client_dirtyctl.sh
                 $<TARGET_FILE:dirtyd> $<TARGET_FILE:dirtyctl>
                 $<TARGET_FILE:test_client_json>
                 $<TARGET_FILE:libdirty-example> ${DIRTYD_METRICS_PYTHON}
                 ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics.py
                 "${DIRTYD_PROMTOOL}"
                 ${CMAKE_CURRENT_SOURCE_DIR}/json_keys.py
                 ${CMAKE_SOURCE_DIR}/clients/dirtyctl.1)
set_tests_properties(test_client_dirtyctl PROPERTIES
                     ENVIRONMENT "DIRTYD_HARNESS=$<TARGET_FILE:dirtyd-harness>"
                     TIMEOUT 300 LABELS "integration;clients")

add_test(NAME test_client_migrate
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_client_migrate.sh
                 $<TARGET_FILE:dirtyd> $<TARGET_FILE:dirtyd-migrate>
                 $<TARGET_FILE:dirtyctl> $<TARGET_FILE:test_client_json>
                 ${DIRTYD_METRICS_PYTHON}
                 ${CMAKE_CURRENT_SOURCE_DIR}/json_keys.py
                 ${CMAKE_SOURCE_DIR}/clients/dirtyctl.1)
set_tests_properties(test_client_migrate PROPERTIES
                     ENVIRONMENT "DIRTYD_HARNESS=$<TARGET_FILE:dirtyd-harness>"
                     TIMEOUT 300 LABELS "integration;clients")

add_test(NAME test_metrics
         COMMAND ${DIRTYD_METRICS_PYTHON}
                 ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics.py
                 --dirtyd $<TARGET_FILE:dirtyd>
                 --harness $<TARGET_FILE:dirtyd-harness>
                 "--promtool=${DIRTYD_PROMTOOL}")
set_tests_properties(test_metrics PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                     LABELS "integration;clients")
