# Install rules for what is not a program (issue 10): man pages made with
# scdoc from packaging/man/*.scd, the systemd units, and the example configs
# as /etc/netpulse/{agent,collector}.conf. Included from the top-level
# CMakeLists.txt.
include(GNUInstallDirs)

find_program(NP_SCDOC scdoc)
if(NP_SCDOC)
    set(np_man_pages netpulse-agent.8 netpulse-collector.8 netpulse.1 netpulse-agent.conf.5
                     netpulse-collector.conf.5)
    set(np_man_out)
    foreach(page ${np_man_pages})
        set(src ${PROJECT_SOURCE_DIR}/packaging/man/${page}.scd)
        set(out ${PROJECT_BINARY_DIR}/man/${page})
        add_custom_command(OUTPUT ${out}
                           COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
                           COMMAND ${NP_SCDOC} < ${src} > ${out}
                           DEPENDS ${src} VERBATIM)
        list(APPEND np_man_out ${out})
        string(REGEX MATCH "[0-9]$" section ${page})
        install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
    endforeach()
    add_custom_target(netpulse-man ALL DEPENDS ${np_man_out})
else()
    message(STATUS "scdoc not found: man pages are not built (Debian package scdoc)")
endif()

# Units go where systemd looks (/lib/systemd/system on Debian 12).
pkg_get_variable(NP_SYSTEMD_UNIT_DIR_DEFAULT systemd systemdsystemunitdir)
if(NOT NP_SYSTEMD_UNIT_DIR_DEFAULT)
    set(NP_SYSTEMD_UNIT_DIR_DEFAULT ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(NETPULSE_SYSTEMD_UNIT_DIR ${NP_SYSTEMD_UNIT_DIR_DEFAULT} CACHE PATH
    "where the systemd units are installed")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/netpulse-agent.service
              ${PROJECT_SOURCE_DIR}/packaging/systemd/netpulse-collector.service
        DESTINATION ${NETPULSE_SYSTEMD_UNIT_DIR})

install(FILES ${PROJECT_SOURCE_DIR}/packaging/agent.conf.example
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/netpulse RENAME agent.conf)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/collector.conf.example
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/netpulse RENAME collector.conf)
