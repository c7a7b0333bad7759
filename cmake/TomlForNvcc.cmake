# nvcc 13.0's front end (cudafe++) miscompiles toml++ 3.3 (Debian's libtomlplusplus-dev): in the
# generic lambdas of table/array for_each, an alias `using return_type = decltype(visitor(.., v))`
# used in a nested `if constexpr` comes out as an undeclared `__T<n>` in the host code
# ("error: '__T6' was not declared in this scope", table.h:914), whether or not for_each is used.
# For CUDA builds only, mfsim_core compiles against a copy of the headers in the build folder in
# which those five aliases name the same types through std::declval instead of the lambda's
# parameter (what cudafe++ mishandles); nothing else changes, and other builds use the system
# headers. (src/io/config.cpp is the one file that includes toml++.)
function(mfsim_toml_for_nvcc target)
  get_target_property(includes tomlplusplus::tomlplusplus INTERFACE_INCLUDE_DIRECTORIES)
  find_path(toml_dir toml++/toml.h HINTS ${includes} NO_CACHE)
  if(NOT toml_dir)
    message(WARNING "mfsim: toml++ headers not found; nvcc may fail on src/io/config.cpp")
    return()
  endif()
  set(copy ${CMAKE_BINARY_DIR}/nvcc-toml)
  file(COPY ${toml_dir}/toml++ DESTINATION ${copy})
  set(ws "[ \t\r\n]*")
  set(call "static_cast<Func&&>\\(${ws}visitor\\)")
  set(v "static_cast<value_ref>\\(v\\)")
  set(k "static_cast<const key&>\\(kvp.first\\)")
  set(e "static_cast<elem_ref>\\(elem\\)")
  set(alias "using return_type${ws}=${ws}decltype\\(${ws}${call}${ws}")
  set(fixed "using return_type = decltype(std::declval<Func&&>()")
  set(total 0)
  foreach(file table array)
    set(path ${copy}/toml++/impl/${file}.h)
    file(READ ${path} text)
    set(before "${text}")
    string(REGEX REPLACE "${alias}\\(${k}, ${v}\\)\\);"
           "${fixed}(std::declval<const key&>(), std::declval<value_ref>()));" text "${text}")
    string(REGEX REPLACE "${alias}\\(${v}\\)\\);" "${fixed}(std::declval<value_ref>()));" text
                         "${text}")
    string(REGEX REPLACE "${alias}\\(${e}, i\\)\\);"
           "${fixed}(std::declval<elem_ref>(), std::declval<size_t&>()));" text "${text}")
    string(REGEX REPLACE "${alias}\\(i, ${e}\\)\\);"
           "${fixed}(std::declval<size_t&>(), std::declval<elem_ref>()));" text "${text}")
    string(REGEX REPLACE "${alias}\\(${e}\\)\\);" "${fixed}(std::declval<elem_ref>()));" text
                         "${text}")
    string(REGEX MATCHALL "std::declval<Func&&>\\(\\)" found "${text}")
    list(LENGTH found count)
    math(EXPR total "${total} + ${count}")
    if(NOT text STREQUAL before)
      file(WRITE ${path} "${text}")
    endif()
  endforeach()
  if(NOT total EQUAL 5)
    message(WARNING "mfsim: rewrote ${total} of toml++'s 5 for_each aliases for nvcc (expected 5: "
                    "another toml++ version?); src/io/config.cpp may not compile")
  endif()
  target_include_directories(${target} BEFORE PRIVATE ${copy})
endfunction()
