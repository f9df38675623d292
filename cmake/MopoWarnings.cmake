# Warning flags for mopo's own programs (tests, examples, benchmarks); never
# attached to the exported targets. torch is a SYSTEM include through its
# imported target, so its headers stay quiet.
include_guard(GLOBAL)
function(mopo_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wpedantic)
  if(MOPO_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
