# install.cmake — `cmake --install build [--prefix P]` on an edge box (default prefix
# /usr/local):
#   bin/vigild                                  the daemon
#   share/vigil/web/                            the web page (http.web_root)
#   share/vigil/{grafana,prometheus}/           dashboard, provisioning, scrape config, alerts
#   share/doc/vigil/README.md
#   lib/systemd/system/vigild.service           deploy/systemd/vigild.service, paths adjusted
#   /etc/vigil/vigil.yaml                       deploy/systemd/vigil.yaml, only if absent
# The configuration goes to /etc/vigil for the prefixes /usr and /usr/local, else to
# P/etc/vigil; VIGIL_CONFIG_DIR and VIGIL_SYSTEMD_UNIT_DIR override. DESTDIR stages.
include(GNUInstallDirs)
set(VIGIL_CONFIG_DIR "" CACHE PATH "Where vigil.yaml is installed (empty: see cmake/install.cmake)")
set(VIGIL_SYSTEMD_UNIT_DIR "" CACHE PATH "Where vigild.service is installed (empty: PREFIX/lib/systemd/system)")

install(TARGETS vigild RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/vigil/web)
install(DIRECTORY grafana/ DESTINATION ${CMAKE_INSTALL_DATADIR}/vigil/grafana)
install(FILES deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/vigil/prometheus)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The unit and the example configuration are written at install time, when the prefix
# is known (--prefix may change it), by cmake/install_systemd.cmake.
install(CODE "
  set(VIGIL_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
  set(VIGIL_STAGE_DIR \"${CMAKE_BINARY_DIR}/install\")
  set(VIGIL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(VIGIL_DATADIR \"${CMAKE_INSTALL_DATADIR}\")
  set(VIGIL_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  set(VIGIL_CONFIG_DIR \"${VIGIL_CONFIG_DIR}\")
  set(VIGIL_SYSTEMD_UNIT_DIR \"${VIGIL_SYSTEMD_UNIT_DIR}\")")
install(SCRIPT cmake/install_systemd.cmake)
