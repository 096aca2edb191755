# Compiles the SPDX identifier lists (registry/data/spdx/*.json) into a source file, so the
# registry validates licence expressions without reading files at run time.
set(PYLON_SPDX_DIR ${CMAKE_CURRENT_SOURCE_DIR}/data/spdx)
set(PYLON_SPDX_SOURCE ${CMAKE_CURRENT_BINARY_DIR}/generated/spdx_lists.cpp)
set(PYLON_SPDX_INPUTS ${PYLON_SPDX_DIR}/license-ids.json
    ${PYLON_SPDX_DIR}/license-ids-deprecated.json ${PYLON_SPDX_DIR}/exceptions.json)
add_custom_command(
    OUTPUT ${PYLON_SPDX_SOURCE}
    COMMAND ${CMAKE_COMMAND} -DDIR=${PYLON_SPDX_DIR} -DOUT=${PYLON_SPDX_SOURCE}
        -P ${CMAKE_CURRENT_SOURCE_DIR}/spdx_generate.cmake
    DEPENDS ${PYLON_SPDX_INPUTS} ${CMAKE_CURRENT_SOURCE_DIR}/spdx_generate.cmake
    COMMENT "Embedding SPDX identifier lists")
