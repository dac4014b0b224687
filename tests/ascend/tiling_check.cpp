// Checks the FusedAdamwGroup host tiling (kernels/ascend/op_host/adamw_tiling_plan.cpp)
// and the kernel's tile walk (kernels/ascend/op_kernel/adamw_schedule.h) without CANN.
// Built and run by test_tiling.py; exits non-zero and prints the first failures.
//
// For every case: every element of the group is covered exactly once and no pad
// element of the padded state layout ever is (core ranges contiguous from 0 to
// the state length; tiles inside one tensor at its state offset, in order, each
// tensor's slice starting on a multiple of kFaStateAlignElems), every UB sub-buffer offset and size and every full-tile
// copy length is a multiple of 32 bytes, tails are padded to whole 32-byte blocks,
// the buffers (two per queue plus the calc buffer) fit the UB budget, and core
// element counts differ by less than one tile.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "adamw_schedule.h"
#include "adamw_tiling_plan.h"

namespace {

int g_failures = 0;
long long g_cases = 0;

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            if (++g_failures <= 20) {                               \
                std::printf("FAIL %s:%d: %s | ", __FILE__, __LINE__, #cond); \
                std::printf(__VA_ARGS__);                           \
                std::printf("\n");                                  \
            }                                                       \
            return;                                                 \
        }                                                           \
    } while (0)

bool mult32(uint64_t bytes) { return bytes % 32 == 0; }

// Element bytes each UB slot must hold for a config, from the layout's definition
// (the tiling data header), recomputed independently of the plan.
void expected_slots(const FaTilingConfig& c, uint32_t* in, uint32_t* out, uint32_t* calc)
{
    const bool k16 = c.paramBytes == 2, ams = c.flags & kFaAmsgrad, master = k16 && (c.flags & kFaMaster);
    const uint32_t sb = c.stateBytes;
    const uint32_t inB[kInSlots] = {master ? 4u : c.paramBytes, c.gradBytes, sb, sb, ams ? sb : 0u};
    const uint32_t outB[kOutSlots] = {c.paramBytes, sb, sb, ams ? sb : 0u, master ? 4u : 0u};
    const uint32_t calcB[kCalcSlots] = {k16 && !master ? 4u : 0u, c.gradBytes == 2 ? 4u : 0u, sb == 2 ? 4u : 0u,
                                        sb == 2 ? 4u : 0u, sb == 2 && ams ? 4u : 0u, 4u, 4u,
                                        k16 && !master ? 4u : 0u, k16 && !master ? 4u : 0u};
    std::copy(inB, inB + kInSlots, in);
    std::copy(outB, outB + kOutSlots, out);
    std::copy(calcB, calcB + kCalcSlots, calc);
}

void check_case(const std::vector<int64_t>& numels, const FaTilingConfig& cfg, uint32_t cores, uint64_t ub,
                bool bitmap)
{
    ++g_cases;
    const uint32_t pb = cfg.paramBytes;
    FusedAdamwGroupTilingData td;
    const char* err = fa_make_tiling(numels.data(), static_cast<uint32_t>(numels.size()), &cfg, cores, ub, &td);
    CHECK(err == nullptr, "tiling error: %s", err ? err : "");
    // The padded layout, recomputed here from its definition.
    int64_t total = 0;
    std::vector<int64_t> prefix;  // state offset of each tensor
    for (int64_t n : numels) {
        prefix.push_back((total + 31) / 32 * 32);
        total = prefix.back() + n;
    }
    CHECK(fa_state_len(numels.data(), static_cast<uint32_t>(numels.size())) == total, "state length");
    CHECK(kFaStateAlignElems == 32, "state alignment");
    int64_t real = 0;  // elements the update touches
    for (int64_t n : numels) real += n;
    const uint64_t L = td.tileLen;
    const char* ctx = pb == 4 ? "fp32" : "16-bit";

    // UB layout: alignment, no overlap (each slot holds a whole tile), budget.
    CHECK(L > 0 && L % kFaCoreAlignElems == 0, "%s tileLen %llu", ctx, (unsigned long long)L);
    uint32_t inB[kInSlots], outB[kOutSlots], calcB[kCalcSlots];
    expected_slots(cfg, inB, outB, calcB);
    const struct {
        const uint32_t* off;
        const uint32_t* bytes;
        uint32_t n, size;
        const char* name;
    } bufs[] = {{td.inOff, inB, kInSlots, td.inBufBytes, "in"}, {td.outOff, outB, kOutSlots, td.outBufBytes, "out"},
                {td.calcOff, calcB, kCalcSlots, td.calcBufBytes, "calc"}};
    for (const auto& b : bufs) {
        CHECK(mult32(b.size), "%s %s buffer size %u not 32-byte aligned", ctx, b.name, b.size);
        for (uint32_t i = 0; i < b.n; ++i) {
            CHECK(mult32(b.off[i]), "%s %s slot %u offset %u not 32-byte aligned", ctx, b.name, i, b.off[i]);
            const uint64_t end = b.off[i] + L * b.bytes[i];
            CHECK(end <= b.size, "%s %s slot %u overruns its buffer", ctx, b.name, i);
            for (uint32_t j = 0; j < b.n; ++j)
                if (j != i && b.bytes[j] && b.bytes[i])
                    CHECK(end <= b.off[j] || b.off[j] + L * b.bytes[j] <= b.off[i], "%s %s slots %u/%u overlap", ctx,
                          b.name, i, j);
        }
    }
    const uint64_t used_ub = 2ULL * td.inBufBytes + 2ULL * td.outBufBytes + td.calcBufBytes;
    CHECK(used_ub + kFaUbReserveBytes <= ub, "%s UB budget: %llu + reserve > %llu", ctx, (unsigned long long)used_ub,
          (unsigned long long)ub);
    // Full-tile copy lengths.
    CHECK(mult32(L * pb) && mult32(L * 4), "full-tile copy lengths");

    // Cores: count, contiguity, alignment, balance.
    const uint64_t units = (total + kFaCoreAlignElems - 1) / kFaCoreAlignElems;
    uint64_t expect_used = cores < kFaMaxCores ? cores : kFaMaxCores;
    if (expect_used > units) expect_used = units;
    if (expect_used == 0) expect_used = 1;
    CHECK(td.usedCores == expect_used, "usedCores %u, expected %llu (cores %u, total %lld)", td.usedCores,
          (unsigned long long)expect_used, cores, (long long)total);
    int64_t next = 0, cmin = INT64_MAX, cmax = 0;
    for (uint32_t c = 0; c < td.usedCores; ++c) {
        CHECK(td.coreFlatStart[c] == next, "core %u starts at %lld, expected %lld", c, (long long)td.coreFlatStart[c],
              (long long)next);
        CHECK(td.coreFlatStart[c] % kFaCoreAlignElems == 0, "core %u start not aligned", c);
        CHECK(td.coreCount[c] >= 0, "negative count");
        const uint32_t t = td.coreFirstTensor[c];
        CHECK(t < numels.size(), "core %u first tensor %u out of range", c, t);
        CHECK(prefix[t] + td.coreFirstOffset[c] == td.coreFlatStart[c], "core %u first tensor/offset wrong", c);
        CHECK(td.coreFirstOffset[c] % kFaStateAlignElems == 0, "core %u starts mid-block in its tensor", c);
        CHECK(td.coreCount[c] == 0 || td.coreFirstOffset[c] < numels[t], "core %u starts past its tensor", c);
        next += td.coreCount[c];
        if (td.coreCount[c] < cmin) cmin = td.coreCount[c];
        if (td.coreCount[c] > cmax) cmax = td.coreCount[c];
    }
    CHECK(next == total, "cores cover %lld of %lld state elements", (long long)next, (long long)total);
    CHECK(cmax - cmin <= static_cast<int64_t>(L), "cores unbalanced: %lld..%lld, tile %llu", (long long)cmin,
          (long long)cmax, (unsigned long long)L);

    // Tile walk of every core, as the kernel does it.
    std::vector<uint8_t> seen(bitmap ? total : 0, 0);
    auto numel_of = [&](uint32_t k) { return numels[k]; };
    int64_t covered = 0;
    for (uint32_t c = 0; c < td.usedCores; ++c) {
        FaTileCursor cur = FaCoreCursor(td, c);
        FaTile tile;
        int64_t flat = td.coreFlatStart[c];
        uint32_t prev_tensor = td.coreFirstTensor[c];
        while (FaNextTile(cur, numel_of, td.tileLen, tile)) {
            CHECK(tile.len >= 1 && tile.len <= L, "tile length %u", tile.len);
            CHECK(tile.tensor < numels.size() && tile.local >= 0 && tile.local + tile.len <= numels[tile.tensor],
                  "tile outside its tensor");
            CHECK(prefix[tile.tensor] + tile.local == tile.flat, "tile at wrong state offset");
            CHECK(tile.tensor == prev_tensor ? tile.flat == flat : (tile.tensor > prev_tensor && tile.local == 0),
                  "tiles out of order or not contiguous");
            CHECK(tile.padded >= tile.len && tile.padded <= L && tile.padded % kFaPadElems == 0, "tail padding");
            CHECK(mult32(uint64_t(tile.padded) * pb) && mult32(uint64_t(tile.padded) * 4), "padded UB footprint");
            if (tile.len == L) CHECK(mult32(uint64_t(tile.len) * pb) && mult32(uint64_t(tile.len) * 4), "copy length");
            if (bitmap)
                for (int64_t i = tile.flat; i < tile.flat + tile.len; ++i) {
                    CHECK(seen[i] == 0, "element %lld covered twice", (long long)i);
                    seen[i] = 1;
                }
            CHECK(tile.flat >= td.coreFlatStart[c] && tile.flat + tile.len <= td.coreFlatStart[c] + td.coreCount[c],
                  "tile outside its core's range");
            flat = tile.flat + tile.len;
            prev_tensor = tile.tensor;
            covered += tile.len;
        }
    }
    CHECK(covered == real, "tiles cover %lld of %lld elements", (long long)covered, (long long)real);
    if (bitmap) {
        std::vector<uint8_t> slice(total, 0);  // 1 inside a tensor's slice, 0 on padding
        for (size_t k = 0; k < numels.size(); ++k)
            for (int64_t i = prefix[k]; i < prefix[k] + numels[k]; ++i) slice[i] = 1;
        for (int64_t i = 0; i < total; ++i)
            CHECK(seen[i] == slice[i], "element %lld %s", (long long)i,
                  slice[i] ? "never covered" : "is padding but was covered");
    }
}

void check_errors()
{
    FusedAdamwGroupTilingData td;
    const int64_t one[] = {1}, neg[] = {-1};
    ++g_cases;
    const FaTilingConfig f32{4, 4, 4, 0}, bad_p{3, 3, 4, 0}, bad_g{4, 2, 4, 0}, bad_s{2, 2, 2, 0},
        bad_flag{2, 2, 4, kFaStochastic};
    CHECK(fa_make_tiling(one, 1, &bad_p, 48, kFa910bUbBytes, &td) != nullptr, "param_bytes 3 accepted");
    CHECK(fa_make_tiling(one, 1, &bad_g, 48, kFa910bUbBytes, &td) != nullptr, "16-bit grads for fp32 params accepted");
    CHECK(fa_make_tiling(one, 1, &bad_s, 48, kFa910bUbBytes, &td) != nullptr, "2-byte states without the flag accepted");
    CHECK(fa_make_tiling(one, 1, &bad_flag, 48, kFa910bUbBytes, &td) != nullptr, "unknown tiling flag accepted");
    CHECK(fa_make_tiling(one, 1, &f32, 0, kFa910bUbBytes, &td) != nullptr, "0 cores accepted");
    CHECK(fa_make_tiling(one, 0, &f32, 48, kFa910bUbBytes, &td) != nullptr, "empty group accepted");
    CHECK(fa_make_tiling(neg, 1, &f32, 48, kFa910bUbBytes, &td) != nullptr, "negative size accepted");
    CHECK(fa_make_tiling(one, 1, &f32, 48, 2048, &td) != nullptr, "UB too small for a tile accepted");
}

}  // namespace

int main()
{
    check_errors();
    // The two plain columns get the full sweep; every variant layout the cheaper one.
    const FaTilingConfig pbs[] = {{4, 4, 4, 0}, {2, 2, 4, 0}};
    const FaTilingConfig variants[] = {{4, 4, 2, kFaBf16State}, {4, 4, 4, kFaAmsgrad},
                                       {4, 4, 2, kFaAmsgrad | kFaBf16State}, {2, 4, 4, 0}, {2, 2, 4, kFaMaster},
                                       {2, 4, 2, kFaAmsgrad | kFaMaster | kFaBf16State}, {2, 2, 2, kFaBf16State},
                                       {4, 4, 4, kFaMaster}};
    // Single tensors: tiny, around the alignment units and the tile length, and up to 1e10.
    std::vector<int64_t> sizes = {1, 2, 7, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 2943, 2944, 2945, 3135, 3136,
                                  3137, 4096, 65535, 65536, 100003, 1000000, 3000017};
    const std::vector<int64_t> huge = {100000000LL, 1000000007LL, 4294967296LL + 17, 10000000000LL};
    for (const FaTilingConfig& pb : pbs) {
        for (uint32_t cores = 1; cores <= 48; ++cores) {
            for (int64_t n : sizes) check_case({n}, pb, cores, kFa910bUbBytes, n <= 200000);
            for (int64_t n : huge) check_case({n}, pb, cores, kFa910bUbBytes, false);
        }
        // Other UB sizes (910B reports 192 KiB; smaller ones stress the tile arithmetic).
        for (uint64_t ub : {uint64_t(16 * 1024), uint64_t(64 * 1024 + 32), uint64_t(248 * 1024)})
            for (uint32_t cores : {1u, 7u, 48u}) check_case({123457}, pb, cores, ub, true);
    }
    // Groups of many tensors, with empty and one-element tensors, and group sizes to 1e10.
    std::mt19937_64 rng(12345);
    for (int rep = 0; rep < 300; ++rep) {
        const int count = 1 + static_cast<int>(rng() % 60);
        std::vector<int64_t> numels;
        for (int k = 0; k < count; ++k) {
            switch (rng() % 6) {
                case 0: numels.push_back(0); break;
                case 1: numels.push_back(1); break;
                case 2: numels.push_back(static_cast<int64_t>(rng() % 100)); break;
                case 3: numels.push_back(static_cast<int64_t>(rng() % 5000)); break;
                default: numels.push_back(static_cast<int64_t>(rng() % 70000)); break;
            }
        }
        const uint32_t cores = 1 + static_cast<uint32_t>(rng() % 48);
        for (const FaTilingConfig& pb : pbs) check_case(numels, pb, cores, kFa910bUbBytes, true);
    }
    for (const FaTilingConfig& cfg : variants)
        for (uint32_t cores : {1u, 7u, 48u}) {
            for (int64_t n : sizes) check_case({n}, cfg, cores, kFa910bUbBytes, n <= 200000);
            check_case({1, 0, 17, 4096, 3000, 0, 65, 1, 12345, 64, 63}, cfg, cores, kFa910bUbBytes, true);
        }
    for (const FaTilingConfig& pb : pbs)
        for (uint32_t cores : {1u, 24u, 40u, 48u}) {
            check_case({0, 0, 0}, pb, cores, kFa910bUbBytes, true);
            check_case({5000000000LL, 0, 1, 4999999999LL}, pb, cores, kFa910bUbBytes, false);
            std::vector<int64_t> many(1000, 4097);
            many[500] = 0;
            check_case(many, pb, cores, kFa910bUbBytes, true);
        }
    std::printf("%lld cases, %d failures\n", g_cases, g_failures);
    return g_failures == 0 ? 0 : 1;
}
