# cmake -DIN=<file> -DOUT=<file.cpp> -DNAMESPACE=<ns> -DSYMBOL=<name> -P embed_text.cmake
# Writes a C++ source defining `extern const char* const NAMESPACE::SYMBOL` = the file's text.
file(READ ${IN} text)
string(FIND "${text}" ")pylon_text\"" clash)
if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${IN} contains the raw-string delimiter )pylon_text\"")
endif()
file(WRITE ${OUT} "// Generated from ${IN} by embed_text.cmake; do not edit.\n"
    "namespace ${NAMESPACE} {\nextern const char* const ${SYMBOL};\n"
    "const char* const ${SYMBOL} = R\"pylon_text(${text})pylon_text\";\n}\n")
