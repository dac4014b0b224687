// Declarations-only stand-in for CANN's PlatformAscendC (see register/op_def_registry.h).
#ifndef FA_HOST_STUB_PLATFORM_ASCENDC_H
#define FA_HOST_STUB_PLATFORM_ASCENDC_H

#include <cstdint>

namespace fe {
class PlatFormInfos;
}

namespace platform_ascendc {
enum class CoreMemType { L0_A, L0_B, L0_C, L1, L2, UB, HBM };
class PlatformAscendC {
public:
    explicit PlatformAscendC(fe::PlatFormInfos* info);
    uint32_t GetCoreNumAiv() const;
    void GetCoreMemSize(CoreMemType memType, uint64_t& size) const;
    uint32_t GetLibApiWorkSpaceSize() const;
};
}  // namespace platform_ascendc

#endif  // FA_HOST_STUB_PLATFORM_ASCENDC_H
