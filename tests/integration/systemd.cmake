# systemd integration tests (included by tests/integration/CMakeLists.txt).
# They need no running systemd and no systemctl: the units are checked with
# systemd-analyze, the daemon is socket-activated by systemd-socket-activate
# and its sd_notify messages are read by the test from its own
# NOTIFY_SOCKET.  Debian 12: package systemd.
if(NOT TARGET dirtyd)
  message(WARNING "systemd tests: no dirtyd target, skipped")
  return()
endif()

set(DIRTYD_SD_DIR ${CMAKE_CURRENT_LIST_DIR}/systemd)
find_program(SYSTEMD_ANALYZE_EXECUTABLE systemd-analyze)
find_program(SYSTEMD_SOCKET_ACTIVATE_EXECUTABLE systemd-socket-activate)
find_program(SYSTEMD_SYSUSERS_EXECUTABLE systemd-sysusers)
foreach(tool SYSTEMD_ANALYZE SYSTEMD_SOCKET_ACTIVATE SYSTEMD_SYSUSERS)
  if(NOT ${tool}_EXECUTABLE)
    # The test then fails saying what to install.
    string(TOLOWER ${tool} name)
    string(REPLACE "_" "-" name ${name})
    set(${tool}_EXECUTABLE ${name})
  endif()
endforeach()

# The units as installed, but with ExecStart= on the built dirtyd:
# systemd-analyze verify wants the binary to exist.
set(sd_units ${CMAKE_CURRENT_BINARY_DIR}/systemd-units)
set(DIRTYD_UNIT_EXEC "$<TARGET_FILE:dirtyd>")
configure_file(${CMAKE_SOURCE_DIR}/systemd/dirtyd.service.in
               ${CMAKE_CURRENT_BINARY_DIR}/dirtyd.service.genex @ONLY)
file(GENERATE OUTPUT ${sd_units}/dirtyd.service
     INPUT ${CMAKE_CURRENT_BINARY_DIR}/dirtyd.service.genex)
configure_file(${CMAKE_SOURCE_DIR}/systemd/dirtyd.socket
               ${sd_units}/dirtyd.socket COPYONLY)

add_test(NAME systemd_units_verify
         COMMAND ${DIRTYD_SD_DIR}/verify_units.sh verify
                 ${SYSTEMD_ANALYZE_EXECUTABLE}
                 ${sd_units}/dirtyd.service ${sd_units}/dirtyd.socket)
# Exposure of the service's sandbox (0 best, 10 worst): at most 2.0.
add_test(NAME systemd_units_security
         COMMAND ${DIRTYD_SD_DIR}/verify_units.sh security
                 ${SYSTEMD_ANALYZE_EXECUTABLE} 2.0 ${sd_units}/dirtyd.service)
# The keys a running VM's safety depends on (verify_units.sh lifecycle).
add_test(NAME systemd_units_lifecycle
         COMMAND ${DIRTYD_SD_DIR}/verify_units.sh lifecycle -
                 ${sd_units}/dirtyd.service)
# The sysusers.d snippet parses (dry run into an empty root).
add_test(NAME systemd_sysusers
         COMMAND ${DIRTYD_SD_DIR}/verify_units.sh sysusers
                 ${SYSTEMD_SYSUSERS_EXECUTABLE}
                 ${CMAKE_SOURCE_DIR}/systemd/dirtyd.sysusers)

add_executable(sd_daemon_test ${DIRTYD_SD_DIR}/sd_daemon_test.c)
target_link_libraries(sd_daemon_test PRIVATE dirtyd_protocol dirtyd_harness)
add_dependencies(sd_daemon_test dirtyd)
add_test(NAME systemd_activate
         COMMAND sd_daemon_test activate $<TARGET_FILE:dirtyd>
                 ${SYSTEMD_SOCKET_ACTIVATE_EXECUTABLE})
add_test(NAME systemd_activate_stream_refused
         COMMAND sd_daemon_test activate-stream $<TARGET_FILE:dirtyd>
                 ${SYSTEMD_SOCKET_ACTIVATE_EXECUTABLE})
add_test(NAME systemd_notify_watchdog
         COMMAND sd_daemon_test notify $<TARGET_FILE:dirtyd>)
add_test(NAME systemd_standalone_socket
         COMMAND sd_daemon_test standalone $<TARGET_FILE:dirtyd>)
add_test(NAME systemd_example_config
         COMMAND sd_daemon_test example $<TARGET_FILE:dirtyd>
                 ${CMAKE_SOURCE_DIR}/systemd/dirtyd.conf.example)

set_tests_properties(
  systemd_units_verify systemd_units_security systemd_units_lifecycle
  systemd_sysusers
  systemd_activate systemd_activate_stream_refused systemd_notify_watchdog
  systemd_standalone_socket systemd_example_config
  PROPERTIES LABELS "integration;systemd" TIMEOUT 120)
