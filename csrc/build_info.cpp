#include "build_info.h"

#include <string>

#include "../kernels/cpu/adamw_cpu.h"

namespace py = pybind11;

namespace fused_adamw {

py::dict build_info_dict() {
  py::dict info;
  info["version"] = FUSED_ADAMW_VERSION;
  info["compiler"] = std::string(__VERSION__);
  py::list isas;
  for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    if (cpu::isa_supported(isa)) isas.append(cpu::isa_name(isa));
  py::dict cpu_info;
  cpu_info["isa"] = cpu::isa_name(cpu::active_isa());
  cpu_info["detected_isa"] = cpu::isa_name(cpu::detected_isa());
  cpu_info["supported_isas"] = isas;
  cpu_info["threads"] = cpu::num_threads();
  info["cpu"] = cpu_info;
#ifdef FUSED_ADAMW_WITH_CUDA
  info["cuda"] = true;
  // What cmake/cuda.cmake compiled: e.g. "80-real,90-real,90-virtual" (SASS for
  // sm_80 and sm_90, PTX for compute_90), and the nvcc that did it.
  info["cuda_architectures"] = FUSED_ADAMW_CUDA_ARCHS;
  info["cuda_compiler"] = "nvcc " FUSED_ADAMW_CUDA_COMPILER_VERSION;
#else
  info["cuda"] = false;
#endif
#ifdef FUSED_ADAMW_WITH_ASCEND
  info["ascend"] = true;
#else
  info["ascend"] = false;
#endif
  return info;
}

}  // namespace fused_adamw
