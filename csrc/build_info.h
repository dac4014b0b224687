// What the library was built with, reported by fused_adamw.build_info().
#pragma once
#include <pybind11/pybind11.h>

namespace fused_adamw {
pybind11::dict build_info_dict();
}
