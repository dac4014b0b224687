// The pybind11 module fused_adamw._C: build information, ISA/thread control and
// direct kernel calls on NumPy arrays (for tests and benchmarks). The same
// shared library also exports the ops.Custom entry points (aot_*.cpp).
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "aot_args.h"
#include "build_info.h"
#include "call_record.h"

namespace py = pybind11;
using namespace fused_adamw;

namespace {

// bfloat16 arrives as raw uint16 bits, or as ml_dtypes' bfloat16.
DType dtype_of(const py::array& a, const std::string& what) {
  const py::dtype dt = a.dtype();
  if (dt.is(py::dtype::of<float>())) return DType::kFloat32;
  const std::string name = py::str(dt.attr("name"));
  if (name == "float16") return DType::kFloat16;
  if (name == "uint16" || name == "bfloat16") return DType::kBFloat16;
  throw py::type_error(what + ": dtype must be float32, float16 or bfloat16 (uint16 bits), got " + name);
}

void require_contiguous(const py::array& a, const std::string& what, bool writeable) {
  if (!(a.flags() & py::array::c_style)) throw py::value_error(what + " must be C-contiguous");
  if (writeable && !a.writeable()) throw py::value_error(what + " must be writeable");
}

float* state_ptr(py::array& a, const std::string& what, int64_t total) {
  require_contiguous(a, what, true);
  if (!a.dtype().is(py::dtype::of<float>())) throw py::type_error(what + " must be float32");
  if (a.size() != total)
    throw py::value_error(what + " must hold " + std::to_string(total) + " elements, got " +
                          std::to_string(a.size()));
  return static_cast<float*>(a.mutable_data());
}

// Validates a (params, grads, exp_avg, exp_avg_sq) set exactly like the AOT path does.
struct DirectCall {
  std::vector<TensorRef> tensors;
  float* m = nullptr;
  float* v = nullptr;
};

DirectCall make_call(py::list params, py::list grads, py::array exp_avg, py::array exp_avg_sq) {
  if (params.size() != grads.size())
    throw py::value_error("params and grads differ in length: " + std::to_string(params.size()) +
                          " vs " + std::to_string(grads.size()));
  if (params.size() == 0) throw py::value_error("params is empty");
  DirectCall call;
  int64_t total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    py::array p = params[i].cast<py::array>(), g = grads[i].cast<py::array>();
    const std::string pn = "params[" + std::to_string(i) + "]", gn = "grads[" + std::to_string(i) + "]";
    require_contiguous(p, pn, true);
    require_contiguous(g, gn, false);
    const DType dt = dtype_of(p, pn);
    if (dtype_of(g, gn) != dt) throw py::type_error(gn + " has a different dtype from " + pn);
    if (g.size() != p.size()) throw py::value_error(gn + " has a different size from " + pn);
    call.tensors.push_back({p.mutable_data(), g.data(), static_cast<int64_t>(p.size()), dt});
    total += p.size();
  }
  call.m = state_ptr(exp_avg, "exp_avg", total);
  call.v = state_ptr(exp_avg_sq, "exp_avg_sq", total);
  return call;
}

void direct_step(py::list params, py::list grads, py::array exp_avg, py::array exp_avg_sq, float lr,
                 float weight_decay, int64_t step, float beta1, float beta2, float eps) {
  const std::string err = check_scalar_values(lr, weight_decay, step, beta1, beta2, eps);
  if (!err.empty()) throw py::value_error(err);
  DirectCall call = make_call(params, grads, exp_avg, exp_avg_sq);
  const StepCoeffs c = make_step_coeffs(lr, weight_decay, step, beta1, beta2, eps);
  py::gil_scoped_release release;
  cpu::adamw_step(call.tensors.data(), static_cast<int>(call.tensors.size()), call.m, call.v, c);
}

void direct_floor(py::list params, py::list grads, py::array exp_avg, py::array exp_avg_sq) {
  DirectCall call = make_call(params, grads, exp_avg, exp_avg_sq);
  py::gil_scoped_release release;
  cpu::floor_pass(call.tensors.data(), static_cast<int>(call.tensors.size()), call.m, call.v);
}

cpu::Isa isa_from_name(const std::string& name) {
  cpu::Isa isa;
  if (!cpu::parse_isa(name.c_str(), &isa))
    throw py::value_error("isa must be one of 'scalar', 'avx2', 'avx512', got '" + name + "'");
  return isa;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fused_adamw native library: kernels, build info and direct calls";
  m.def("build_info", &build_info_dict, "What this library was built with and what it will run.");
  m.def("adamw_step", &direct_step, py::arg("params"), py::arg("grads"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"), py::arg("lr"), py::arg("weight_decay"), py::arg("step"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        "One fused AdamW step on NumPy arrays, in place, with the CPU kernel. `step` is t "
        "(1 on the first step). bfloat16 arrays are passed as uint16 bits.");
  m.def("floor_pass", &direct_floor, py::arg("params"), py::arg("grads"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"),
        "The memory floor: AdamW's reads and writes with no math (overwrites the arrays).");
  m.def("call_record", [] {
    const CallRecord r = last_call_record();
    return py::make_tuple(r.calls, r.written);
  }, "(number of AOT kernel calls served, addresses written by the last: params..., exp_avg, exp_avg_sq)");
  m.def("get_isa", [] { return std::string(cpu::isa_name(cpu::active_isa())); });
  m.def("detected_isa", [] { return std::string(cpu::isa_name(cpu::detected_isa())); });
  m.def("isa_supported", [](const std::string& name) { return cpu::isa_supported(isa_from_name(name)); });
  m.def("set_isa", [](const std::string& name) {
    if (!cpu::set_isa(isa_from_name(name)))
      throw py::value_error("isa '" + name + "' is not supported by this CPU or build");
  });
  m.def("num_threads", &cpu::num_threads);
  m.def("openmp_max_threads", [] { return omp_get_max_threads(); },
        "OpenMP's thread count (OMP_NUM_THREADS, else the CPUs of the process).");
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("num_threads must be >= 1");
    cpu::set_num_threads(n);
  });
}
