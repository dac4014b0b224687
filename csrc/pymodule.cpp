// The pybind11 module fused_adamw._C: build information, ISA/thread control and
// direct kernel calls on NumPy arrays (for tests and benchmarks). The same
// shared library also exports the ops.Custom entry points (aot_*.cpp).
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "../kernels/common/rounding.h"

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

// Only real ndarrays: pybind11 would otherwise convert a NumPy scalar or a list
// into a temporary array, and the kernel would update the temporary.
py::array as_array(const py::handle& obj, const std::string& what, bool writeable) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(what + " must be a NumPy array, got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!(a.flags() & py::array::c_style)) throw py::value_error(what + " must be C-contiguous");
  if (writeable && !a.writeable()) throw py::value_error(what + " must be writeable");
  return a;
}

void* state_ptr(const py::handle& obj, const std::string& what, int64_t total, bool bf16_ok) {
  py::array a = as_array(obj, what, true);
  const DType dt = dtype_of(a, what);
  if (!(dt == DType::kFloat32 || (bf16_ok && dt == DType::kBFloat16)))
    throw py::type_error(what + (bf16_ok ? " must be float32 or bfloat16 (uint16 bits)" : " must be float32"));
  if (a.size() != total)
    throw py::value_error(what + " must hold " + std::to_string(total) + " elements (the padded state size), got " +
                          std::to_string(a.size()));
  return a.mutable_data();
}

// Validates a (params, grads, states) set exactly like the AOT path does.
struct DirectCall {
  std::vector<TensorRef> tensors;
  GroupStates states;
  unsigned flags = 0;
};

std::vector<TensorRef> make_tensors(py::list params, py::list grads) {
  if (params.size() != grads.size())
    throw py::value_error("params and grads differ in length: " + std::to_string(params.size()) +
                          " vs " + std::to_string(grads.size()));
  if (params.size() == 0) throw py::value_error("params is empty");
  std::vector<TensorRef> tensors;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string pn = "params[" + std::to_string(i) + "]", gn = "grads[" + std::to_string(i) + "]";
    py::array p = as_array(params[i], pn, true), g = as_array(grads[i], gn, false);
    const DType dt = dtype_of(p, pn), gdt = dtype_of(g, gn);
    if (gdt != dt && gdt != DType::kFloat32)
      throw py::type_error(gn + " must have the dtype of " + pn + " or float32");
    if (g.ndim() != p.ndim() || !std::equal(g.shape(), g.shape() + g.ndim(), p.shape()))
      throw py::value_error(gn + " has a different shape from " + pn);
    tensors.push_back({p.mutable_data(), g.data(), static_cast<int64_t>(p.size()), dt, gdt});
  }
  return tensors;
}

DirectCall make_call(py::list params, py::list grads, py::object exp_avg, py::object exp_avg_sq,
                     py::object max_exp_avg_sq, py::object master, bool stochastic) {
  DirectCall call;
  call.tensors = make_tensors(params, grads);
  const int64_t total = cpu::padded_total(call.tensors.data(), static_cast<int>(call.tensors.size()));
  call.states.exp_avg = state_ptr(exp_avg, "exp_avg", total, true);
  const bool bf16 = dtype_of(py::reinterpret_borrow<py::array>(exp_avg), "exp_avg") == DType::kBFloat16;
  call.states.exp_avg_sq = state_ptr(exp_avg_sq, "exp_avg_sq", total, true);
  if (bf16 != (dtype_of(py::reinterpret_borrow<py::array>(exp_avg_sq), "exp_avg_sq") == DType::kBFloat16))
    throw py::type_error("exp_avg and exp_avg_sq must have the same dtype");
  call.flags = bf16 ? kBf16State : 0u;
  if (!max_exp_avg_sq.is_none()) {
    call.states.max_exp_avg_sq = state_ptr(max_exp_avg_sq, "max_exp_avg_sq", total, true);
    if (bf16 != (dtype_of(py::reinterpret_borrow<py::array>(max_exp_avg_sq), "max_exp_avg_sq") == DType::kBFloat16))
      throw py::type_error("max_exp_avg_sq must have the dtype of exp_avg");
    call.flags |= kAmsgrad;
  }
  if (!master.is_none()) {
    call.states.master = static_cast<float*>(state_ptr(master, "master", total, false));
    call.flags |= kMaster;
  }
  if (stochastic) call.flags |= kStochastic;
  if (!variant_valid(call.flags)) throw py::value_error("master and stochastic rounding exclude each other");
  return call;
}

void direct_step(py::list params, py::list grads, py::object exp_avg, py::object exp_avg_sq, float lr,
                 float weight_decay, int64_t step, float beta1, float beta2, float eps, py::object max_exp_avg_sq,
                 py::object master, bool stochastic, uint64_t seed, int64_t index_base, float grad_scale,
                 float grad_clip) {
  const std::string err = check_scalar_values(lr, weight_decay, step, beta1, beta2, eps, grad_scale, grad_clip);
  if (!err.empty()) throw py::value_error(err);
  if (step > INT32_MAX) throw py::value_error("step must fit in int32 (the optimizer's global_step)");
  if (index_base < 0) throw py::value_error("index_base must be >= 0");
  DirectCall call = make_call(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, master, stochastic);
  const StepCoeffs c = make_step_coeffs(lr, weight_decay, step, beta1, beta2, eps, grad_scale, grad_clip);
  UpdateConfig cfg;
  cfg.flags = call.flags;
  cfg.sr_key = fa_sr_key(seed, static_cast<uint32_t>(step));
  cfg.index_base = index_base;
  py::gil_scoped_release release;
  cpu::adamw_step(call.tensors.data(), static_cast<int>(call.tensors.size()), call.states, c, cfg);
}

py::tuple direct_sumsq(py::list grads, float grad_scale) {
  std::vector<TensorRef> tensors;
  if (grads.size() == 0) throw py::value_error("grads is empty");
  for (size_t i = 0; i < grads.size(); ++i) {
    const std::string gn = "grads[" + std::to_string(i) + "]";
    py::array g = as_array(grads[i], gn, false);
    const DType dt = dtype_of(g, gn);
    tensors.push_back({nullptr, g.data(), static_cast<int64_t>(g.size()), dt, dt});
  }
  cpu::GradNorm r;
  {
    py::gil_scoped_release release;
    r = cpu::grad_sumsq(tensors.data(), static_cast<int>(tensors.size()), grad_scale);
  }
  return py::make_tuple(r.sumsq, r.nonfinite);
}

void direct_floor(py::list params, py::list grads, py::object exp_avg, py::object exp_avg_sq) {
  DirectCall call = make_call(params, grads, exp_avg, exp_avg_sq, py::none(), py::none(), false);
  if (call.flags != 0) throw py::type_error("floor_pass takes float32 states");
  py::gil_scoped_release release;
  cpu::floor_pass(call.tensors.data(), static_cast<int>(call.tensors.size()),
                  static_cast<float*>(call.states.exp_avg), static_cast<float*>(call.states.exp_avg_sq));
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
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::kw_only(),
        py::arg("max_exp_avg_sq") = py::none(), py::arg("master") = py::none(), py::arg("stochastic") = false,
        py::arg("seed") = 0, py::arg("index_base") = 0, py::arg("grad_scale") = 1.0f, py::arg("grad_clip") = 1.0f,
        "One fused AdamW step on NumPy arrays, in place, with the CPU kernel. `step` is t "
        "(1 on the first step). bfloat16 arrays are passed as uint16 bits. States hold "
        "state_size(numels) elements (padded layout); bfloat16 states select that variant, "
        "max_exp_avg_sq amsgrad, master fp32 master weights; grads may be float32 for 16-bit params.");
  m.def("grad_sumsq", &direct_sumsq, py::arg("grads"), py::arg("grad_scale") = 1.0f,
        "Pass 1 of the whole step: (sum of squares of float32(g * grad_scale) in float64, any NaN/Inf).");
  m.def("state_size", [](const std::vector<int64_t>& numels) {
    int64_t total = 0;
    for (int64_t n : numels) total = align_state(total) + n;
    return total;
  }, py::arg("numels"), "Elements of a group's flat state for tensors of these sizes (padded layout).");
  m.def("state_align", [] { return kStateAlignElems; }, "Each tensor's state slice starts at a multiple of this.");
  m.def("set_call_recording", &set_call_recording, py::arg("on"),
        "Tests only: record AOT calls (off by default; clears the record).");
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
