# CUDA backend (kernels/cuda, csrc/aot_cuda.cpp), included by CMakeLists.txt.
# FUSED_ADAMW_CUDA: AUTO builds it when nvcc is found, ON requires it, OFF skips it.
# SASS for sm_80 and sm_90 plus compute_90 PTX (JIT-compiled on newer GPUs), and
# the CUDA runtime linked statically: the library needs only the driver
# (R580+ for a CUDA 13 runtime), not any libcudart.
string(TOUPPER "${FUSED_ADAMW_CUDA}" _fa_cuda_mode)
if(_fa_cuda_mode STREQUAL "OFF")
  message(STATUS "fused_adamw: CUDA backend disabled (FUSED_ADAMW_CUDA=OFF)")
  return()
endif()
if(NOT _fa_cuda_mode MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "FUSED_ADAMW_CUDA must be AUTO, ON or OFF, got '${FUSED_ADAMW_CUDA}'")
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(_fa_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "FUSED_ADAMW_CUDA=ON but no CUDA compiler (nvcc) was found; set CUDACXX or "
                        "put nvcc on PATH, or use FUSED_ADAMW_CUDA=AUTO/OFF")
  endif()
  message(STATUS "fused_adamw: CUDA backend not built (no nvcc found; FUSED_ADAMW_CUDA=AUTO)")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80-real 90-real 90-virtual)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

# The kernels get their own object library: _C's CPU flags are g++ flags nvcc
# does not take. No fast-math: NaN/Inf must propagate, division and sqrt stay
# IEEE-rounded as on the CPU. -fmad=false: no multiply-add contraction (the PTX
# carries mul.rn/add.rn, which ptxas never fuses), so every float32 operation is
# rounded as in the CPU kernel (built with -ffp-contract=off) and the results
# are bit-identical to it; with contraction, elements that cancel differed by
# hundreds of ulps. tests/cuda/test_cuda_build.py checks the PTX for it.
add_library(fa_cuda_kernels OBJECT kernels/cuda/adamw_cuda.cu)
set_target_properties(fa_cuda_kernels PROPERTIES
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
  CUDA_RUNTIME_LIBRARY Static
  POSITION_INDEPENDENT_CODE ON)
target_compile_options(fa_cuda_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 -fmad=false -Xptxas=-warn-spills>)

target_sources(_C PRIVATE csrc/aot_cuda.cpp)
target_link_libraries(_C PRIVATE fa_cuda_kernels CUDA::cudart_static)
# _C was created before CUDA was enabled: give it the CUDA properties too
# (it links the kernel objects and the static runtime).
set_target_properties(_C PROPERTIES CUDA_RUNTIME_LIBRARY Static CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
string(REPLACE ";" "," _fa_cuda_archs "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(_C PRIVATE FUSED_ADAMW_WITH_CUDA
  FUSED_ADAMW_CUDA_ARCHS="${_fa_cuda_archs}"
  FUSED_ADAMW_CUDA_COMPILER_VERSION="${CMAKE_CUDA_COMPILER_VERSION}")
message(STATUS "fused_adamw: CUDA backend enabled (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
               "architectures ${CMAKE_CUDA_ARCHITECTURES}, static CUDA runtime)")
