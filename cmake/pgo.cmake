# Profile-guided optimization with GCC, in two builds that tools/build-pgo drives:
#   ZT_PGO_GENERATE=DIR  instruments every C++ object; running it writes profiles into DIR;
#   ZT_PGO_USE=DIR       optimizes with the profiles in DIR (functions without one: as usual).
# Profiles are named by object paths relative to the build dir (-fprofile-prefix-path), so the
# instrumented build and the optimized one can live in different dirs.
# What it saves and how the profiles are made: docs/PERFORMANCE.md, "Profile-guided optimization".
set(ZT_PGO_GENERATE "" CACHE PATH "Instrument the build for PGO; profiles are written to this dir")
set(ZT_PGO_USE "" CACHE PATH "Optimize with the PGO profiles in this dir")

if(ZT_PGO_GENERATE OR ZT_PGO_USE)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    message(FATAL_ERROR "ZT_PGO_GENERATE/ZT_PGO_USE need GCC (the profiles are GCC's)")
  endif()
  if(ZT_PGO_GENERATE AND ZT_PGO_USE)
    message(FATAL_ERROR "set one of ZT_PGO_GENERATE and ZT_PGO_USE, not both")
  endif()
  if(ZT_SANITIZE OR ZT_FUZZ)
    message(FATAL_ERROR "PGO is for release builds: not with ZT_SANITIZE or ZT_FUZZ")
  endif()
endif()

if(ZT_PGO_GENERATE)
  # Atomic counters: the agent's consumer and export threads run the same code.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fprofile-generate=${ZT_PGO_GENERATE}>
                      $<$<COMPILE_LANGUAGE:CXX>:-fprofile-prefix-path=${CMAKE_BINARY_DIR}>
                      $<$<COMPILE_LANGUAGE:CXX>:-fprofile-update=atomic>)
  add_link_options(-fprofile-generate=${ZT_PGO_GENERATE})
elseif(ZT_PGO_USE)
  if(NOT IS_DIRECTORY ${ZT_PGO_USE})
    message(FATAL_ERROR "ZT_PGO_USE: no profile dir ${ZT_PGO_USE} (tools/build-pgo makes it)")
  endif()
  # -fprofile-partial-training: code the training did not run (other protocols, error paths)
  # is optimized as without profiles, not for size. -fprofile-correction: counters of the two
  # threads may disagree slightly.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fprofile-use=${ZT_PGO_USE}>
                      $<$<COMPILE_LANGUAGE:CXX>:-fprofile-prefix-path=${CMAKE_BINARY_DIR}>
                      $<$<COMPILE_LANGUAGE:CXX>:-fprofile-partial-training>
                      $<$<COMPILE_LANGUAGE:CXX>:-fprofile-correction>
                      $<$<COMPILE_LANGUAGE:CXX>:-Wno-missing-profile>)
  # GCC 12 inlines and unrolls further with profiles and then reports overflows it cannot rule
  # out inside libstdc++'s string copies and our bounded formatting loops (tuple.cc's dotted
  # quad into 16 bytes). The plain build, which CI compiles with -Werror, keeps these checks.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>
                      $<$<COMPILE_LANGUAGE:CXX>:-Wno-stringop-overflow>)
endif()
