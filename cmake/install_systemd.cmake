# install_systemd.cmake — run by `cmake --install`: writes deploy/systemd/vigild.service
# and deploy/systemd/vigil.yaml with this install's paths in place of the /usr/local ones
# they name, installs the unit, and installs the configuration unless one exists.
# Inputs (set by install.cmake): VIGIL_SOURCE_DIR, VIGIL_STAGE_DIR, VIGIL_BINDIR,
# VIGIL_DATADIR, VIGIL_DOCDIR, VIGIL_CONFIG_DIR, VIGIL_SYSTEMD_UNIT_DIR.
set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" prefix "${prefix}")
if(VIGIL_CONFIG_DIR)
  set(confdir "${VIGIL_CONFIG_DIR}")
elseif(prefix MATCHES "^/usr(/local)?$")
  set(confdir "/etc/vigil")
else()
  set(confdir "${prefix}/etc/vigil")
endif()
if(VIGIL_SYSTEMD_UNIT_DIR)
  set(unitdir "${VIGIL_SYSTEMD_UNIT_DIR}")
else()
  set(unitdir "${prefix}/lib/systemd/system")
endif()

file(READ "${VIGIL_SOURCE_DIR}/deploy/systemd/vigild.service" unit)
string(REPLACE "/usr/local/bin/vigild" "${prefix}/${VIGIL_BINDIR}/vigild" unit "${unit}")
string(REPLACE "/etc/vigil/" "${confdir}/" unit "${unit}")
string(REPLACE "/usr/local/share/doc/vigil/" "${prefix}/${VIGIL_DOCDIR}/" unit "${unit}")
file(WRITE "${VIGIL_STAGE_DIR}/vigild.service" "${unit}")
file(INSTALL "${VIGIL_STAGE_DIR}/vigild.service" DESTINATION "${unitdir}")

file(READ "${VIGIL_SOURCE_DIR}/deploy/systemd/vigil.yaml" conf)
string(REPLACE "/usr/local/share/vigil/" "${prefix}/${VIGIL_DATADIR}/vigil/" conf "${conf}")
string(REPLACE "/etc/vigil/" "${confdir}/" conf "${conf}")
file(WRITE "${VIGIL_STAGE_DIR}/vigil.yaml" "${conf}")
if(EXISTS "$ENV{DESTDIR}${confdir}/vigil.yaml")
  message(STATUS "Keeping: $ENV{DESTDIR}${confdir}/vigil.yaml")
else()
  file(INSTALL "${VIGIL_STAGE_DIR}/vigil.yaml" DESTINATION "${confdir}"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
