# wsgate_warnings(<target>): strict warnings as errors, for our own code only.
function(wsgate_warnings target)
  get_target_property(kind ${target} TYPE)
  if(kind STREQUAL "INTERFACE_LIBRARY")
    return()
  endif()
  target_compile_options(${target} PRIVATE
    $<$<OR:$<CXX_COMPILER_ID:GNU>,$<CXX_COMPILER_ID:Clang>>:-Wall -Wextra -Werror -Wshadow
      -Wnon-virtual-dtor -Wconversion -Wno-sign-conversion>)
endfunction()
