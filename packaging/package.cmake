# Installation and the Debian package (CPack's DEB generator): tools/build-deb builds it.
include(GNUInstallDirs)
install(TARGETS zerotrace RUNTIME DESTINATION bin)
install(TARGETS otlp_sink RUNTIME DESTINATION bin)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/zerotrace.service DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/config.yaml DESTINATION /etc/zerotrace)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/SECURITY.md
  DESTINATION share/doc/zerotrace)

# The man page is --help, formatted by help2man.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/zerotrace.8.gz
    COMMAND ${HELP2MAN} --no-info --section 8 --name "trace every HTTP request on this node with eBPF"
      --version-string "zerotrace ${PROJECT_VERSION}" $<TARGET_FILE:zerotrace>
      | gzip -9n > ${CMAKE_BINARY_DIR}/zerotrace.8.gz
    DEPENDS zerotrace VERBATIM)
  add_custom_target(zerotrace_man ALL DEPENDS ${CMAKE_BINARY_DIR}/zerotrace.8.gz)
  install(FILES ${CMAKE_BINARY_DIR}/zerotrace.8.gz DESTINATION share/man/man8)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME zerotrace)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "zerotrace maintainers <zerotrace@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "eBPF node agent: OpenTelemetry spans for every HTTP request, no instrumentation")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# The package on this machine: install, verify the unit, trace a curl, remove (root; ~1.5 min).
if(BUILD_TESTING AND ZT_E2E AND NOT ZT_SANITIZE AND HELP2MAN)
  add_test(NAME deb_package_test
    COMMAND ${PROJECT_SOURCE_DIR}/tests/package/deb_test.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(deb_package_test PROPERTIES LABELS "bpf;package" RUN_SERIAL TRUE
    TIMEOUT 400)
endif()
