// Storage types of the CPU kernel's 16-bit elements. Distinct types (not plain
// uint16_t) so that each ISA's load/store overloads pick the right conversion.
#pragma once
#include <cstdint>
#include <type_traits>

namespace fused_adamw {
namespace cpu {

struct Bf16 {
  uint16_t bits;
};
struct Fp16 {
  uint16_t bits;
};
static_assert(sizeof(Bf16) == 2 && sizeof(Fp16) == 2, "16-bit element types must be 2 bytes");

}  // namespace cpu
}  // namespace fused_adamw
