# zt_bpf_object(NAME): bpf/NAME.bpf.c -> NAME.bpf.o (clang, CO-RE) -> NAME.skel.h (bpftool)
# -> INTERFACE target zt_bpf_NAME whose include dir holds the skeleton.
find_program(ZT_CLANG NAMES clang clang-14 REQUIRED)
find_program(ZT_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(ZT_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(ZT_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()

function(zt_bpf_object name)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${name}.bpf.c)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  # CONFIGURE_DEPENDS: a header added later (new .bpf.h) is a dependency without a re-run of cmake.
  file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.h ${PROJECT_SOURCE_DIR}/include/zerotrace/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${ZT_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${ZT_BPF_ARCH}
            -Wall -Werror -Wno-unused-function
            -I${PROJECT_SOURCE_DIR}/vmlinux/${ZT_BPF_ARCH}
            -I${PROJECT_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${headers}
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${ZT_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(zt_bpf_${name}_gen DEPENDS ${skel})
  add_library(zt_bpf_${name} INTERFACE)
  add_dependencies(zt_bpf_${name} zt_bpf_${name}_gen)
  target_include_directories(zt_bpf_${name} INTERFACE ${out_dir} ${PROJECT_SOURCE_DIR}/include)
endfunction()
