# CUDA backend: optional. AKV_CUDA=AUTO builds it when nvcc is found, ON requires it, OFF builds
# nothing CUDA. The CPU build never depends on it; nothing outside src/cuda includes CUDA headers.
#
# Architectures: machine code for sm_90 (H100/H200) plus PTX for compute_80, which the driver
# compiles for sm_80 / sm_86 / sm_89 at first use (this keeps the CI build on a 2-core machine
# short). Set CMAKE_CUDA_ARCHITECTURES (e.g. "80;89;90") to embed machine code for more.
set(AKV_HAVE_CUDA OFF)
if(NOT AKV_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(AKV_HAVE_CUDA ON)
  elseif(AKV_CUDA STREQUAL "ON")
    message(FATAL_ERROR "AKV_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()
file(GLOB AKV_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cuda/*.cu ${PROJECT_SOURCE_DIR}/src/cuda/*.cc)
if(AKV_HAVE_CUDA AND AKV_CUDA_SOURCES)
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90-real 80-virtual)
  endif()
  enable_language(CUDA)
  # CMake 3.25 does not know nvcc's C++20 flag; nvcc 12+ accepts it.
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  find_package(CUDAToolkit REQUIRED)
  add_library(akv_cuda STATIC ${AKV_CUDA_SOURCES})
  set_target_properties(akv_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON)
  target_include_directories(akv_cuda PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  # No fast math: the KV quantizer must round exactly like the CPU codecs.
  target_compile_options(akv_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcudafe --diag_suppress=177>)
  string(REPLACE ";" " " _akv_archs "${CMAKE_CUDA_ARCHITECTURES}")
  target_compile_definitions(akv_cuda PRIVATE AKV_CUDA_ARCH_LIST="${_akv_archs}")
  target_link_libraries(akv_cuda PUBLIC akv_model CUDA::cudart CUDA::cublas)
  target_link_libraries(akv_engine PUBLIC akv_cuda)
  target_compile_definitions(akv_engine PUBLIC AKV_HAVE_CUDA=1)
  message(STATUS "akv: CUDA backend ON (${CMAKE_CUDA_ARCHITECTURES})")

  # GPU benchmarks (bench/cuda_*.cc; not Google Benchmark programs, so not named *_bench.cc).
  file(GLOB AKV_CUDA_BENCH_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bench/cuda_*.cc)
  foreach(src ${AKV_CUDA_BENCH_SOURCES})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE akv)
  endforeach()
else()
  message(STATUS "akv: CUDA backend OFF")
endif()
