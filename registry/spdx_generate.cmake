# cmake -DDIR=<data/spdx> -DOUT=<file.cpp> -P spdx_generate.cmake
file(READ ${DIR}/license-ids.json ids)
file(READ ${DIR}/license-ids-deprecated.json deprecated)
file(READ ${DIR}/exceptions.json exceptions)
file(WRITE ${OUT} "// Generated from registry/data/spdx by registry/spdx_generate.cmake; do not edit.\n"
    "namespace pylon::registry::api::spdx_data {\n"
    "extern const char* const kLicenseIds;\nextern const char* const kDeprecatedIds;\n"
    "extern const char* const kExceptionIds;\n"
    "const char* const kLicenseIds = R\"spdx(${ids})spdx\";\n"
    "const char* const kDeprecatedIds = R\"spdx(${deprecated})spdx\";\n"
    "const char* const kExceptionIds = R\"spdx(${exceptions})spdx\";\n"
    "}  // namespace pylon::registry::api::spdx_data\n")
