# Ascend backend (kernels/ascend): the FusedAdamwGroup custom operator package,
# built and installed with CANN's tooling by kernels/ascend/build_opp.sh.
#   FUSED_ADAMW_ASCEND=AUTO  build it when a CANN toolkit is found (ASCEND_HOME_PATH,
#                            or the default /usr/local/Ascend/ascend-toolkit/latest);
#                            otherwise build nothing Ascend, quietly (CI, this machine)
#   FUSED_ADAMW_ASCEND=ON    require CANN: configure fails without it
#   FUSED_ADAMW_ASCEND=OFF   never build it
# The package is a separate artifact (an operator package loaded by CANN, not
# code linked into _C); _C only gets FUSED_ADAMW_WITH_ASCEND and the install path.
string(TOUPPER "${FUSED_ADAMW_ASCEND}" _fa_ascend_mode)
if(_fa_ascend_mode STREQUAL "OFF")
  return()
endif()
if(NOT _fa_ascend_mode MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "FUSED_ADAMW_ASCEND must be AUTO, ON or OFF (got '${FUSED_ADAMW_ASCEND}')")
endif()

set(_fa_cann "")
if(DEFINED ENV{ASCEND_HOME_PATH} AND IS_DIRECTORY "$ENV{ASCEND_HOME_PATH}")
  set(_fa_cann "$ENV{ASCEND_HOME_PATH}")
elseif(IS_DIRECTORY "/usr/local/Ascend/ascend-toolkit/latest")
  set(_fa_cann "/usr/local/Ascend/ascend-toolkit/latest")
endif()
# The operator-project template is what the build instantiates; a runtime-only
# CANN install lacks it.
if(_fa_cann AND NOT IS_DIRECTORY "${_fa_cann}/tools/op_project_templates/ascendc"
   AND NOT IS_DIRECTORY "${_fa_cann}/tools/msopgen")
  set(_fa_cann_missing "${_fa_cann} has no Ascend C operator-project tooling (tools/op_project_templates, tools/msopgen)")
  set(_fa_cann "")
elseif(NOT _fa_cann)
  set(_fa_cann_missing "no CANN toolkit found (set ASCEND_HOME_PATH: source <cann>/set_env.sh)")
endif()

if(NOT _fa_cann)
  if(_fa_ascend_mode STREQUAL "ON")
    message(FATAL_ERROR "FUSED_ADAMW_ASCEND=ON but ${_fa_cann_missing}.")
  endif()
  return()  # AUTO without CANN: nothing Ascend, no message
endif()

set(FUSED_ADAMW_ASCEND_SOC "ascend910b" CACHE STRING "SoC family the Ascend operator is built for")
set(FUSED_ADAMW_ASCEND_OPP_DIR "${CMAKE_BINARY_DIR}/ascend_opp" CACHE PATH
    "Where the Ascend operator package is installed (its vendors/fused_adamw goes on ASCEND_CUSTOM_OPP_PATH)")
message(STATUS "fused_adamw: building the Ascend operator package with CANN at ${_fa_cann}")

file(GLOB _fa_ascend_sources CONFIGURE_DEPENDS
     "${CMAKE_SOURCE_DIR}/kernels/ascend/op_host/*" "${CMAKE_SOURCE_DIR}/kernels/ascend/op_kernel/*")
set(_fa_ascend_stamp "${CMAKE_BINARY_DIR}/ascend_build/opp.stamp")
add_custom_command(
  OUTPUT "${_fa_ascend_stamp}"
  COMMAND ${CMAKE_COMMAND} -E env "ASCEND_HOME_PATH=${_fa_cann}" "PYTHON=${Python_EXECUTABLE}"
          "SOC_VERSION=${FUSED_ADAMW_ASCEND_SOC}"
          bash "${CMAKE_SOURCE_DIR}/kernels/ascend/build_opp.sh" "${CMAKE_BINARY_DIR}/ascend_build"
          "${FUSED_ADAMW_ASCEND_OPP_DIR}"
  COMMAND ${CMAKE_COMMAND} -E touch "${_fa_ascend_stamp}"
  DEPENDS ${_fa_ascend_sources} "${CMAKE_SOURCE_DIR}/kernels/ascend/build_opp.sh"
  COMMENT "Building the FusedAdamwGroup Ascend C operator package (CANN)"
  USES_TERMINAL VERBATIM)
add_custom_target(fused_adamw_ascend_opp ALL DEPENDS "${_fa_ascend_stamp}")
add_dependencies(_C fused_adamw_ascend_opp)
target_compile_definitions(_C PRIVATE FUSED_ADAMW_WITH_ASCEND
                           FUSED_ADAMW_ASCEND_OPP_DIR="${FUSED_ADAMW_ASCEND_OPP_DIR}/vendors/fused_adamw")
