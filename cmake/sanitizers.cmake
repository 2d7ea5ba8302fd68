# WSGATE_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer on every target.
# WSGATE_TSAN=ON: ThreadSanitizer on every target (CI builds the daemon's threaded tests with it).
# WSGATE_FUZZ=ON: clang's libFuzzer plus ASan/UBSan for the fuzz targets (tests/fuzz).
if(WSGATE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
if(WSGATE_TSAN)
  # GCC warns that TSan does not model Asio's atomic_thread_fence; Asio's handler hand-off is
  # also ordered by its mutexes, which TSan does see.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer $<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>)
  add_link_options(-fsanitize=thread)
endif()
if(WSGATE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "WSGATE_FUZZ needs clang (CC=clang CXX=clang++)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
