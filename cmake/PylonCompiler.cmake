# Compiler settings shared by every Pylon target: warnings, sanitizers, ccache.

if(NOT CMAKE_CXX_COMPILER_LAUNCHER)
    find_program(PYLON_CCACHE ccache)
    if(PYLON_CCACHE)
        set(CMAKE_CXX_COMPILER_LAUNCHER ${PYLON_CCACHE})
        set(CMAKE_C_COMPILER_LAUNCHER ${PYLON_CCACHE})
    endif()
endif()

# Interface target every Pylon library and executable links to; third-party code does not.
add_library(pylon_warnings INTERFACE)
target_compile_options(pylon_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough)
if(PYLON_WERROR)
    target_compile_options(pylon_warnings INTERFACE -Werror)
endif()

if(PYLON_SANITIZE)
    string(REPLACE "," ";" _pylon_sanitizers "${PYLON_SANITIZE}")
    foreach(_s IN LISTS _pylon_sanitizers)
        if(NOT _s MATCHES "^(address|undefined|thread|leak)$")
            message(FATAL_ERROR "PYLON_SANITIZE: unknown sanitizer '${_s}'")
        endif()
    endforeach()
    add_compile_options(-fsanitize=${PYLON_SANITIZE} -fno-omit-frame-pointer
        -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${PYLON_SANITIZE})
endif()

# pylon_add_library(NAME SOURCES...) — one static library per top-level folder, with the
# house layout: public headers in include/, private code in src/.
function(pylon_add_library name)
    add_library(pylon_${name} STATIC ${ARGN})
    add_library(pylon::${name} ALIAS pylon_${name})
    target_include_directories(pylon_${name}
        PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
        PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_link_libraries(pylon_${name} PRIVATE pylon_warnings)
endfunction()

if(PYLON_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "PYLON_FUZZ needs clang (CC=clang-14 CXX=clang++-14)")
    endif()
    # Everything is instrumented for coverage and checked by ASan/UBSan; only the fuzz
    # executables link libFuzzer's main.
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()
