// Compares beta^t as the CUDA device code computes it (double pow rounded once:
// fa_powf under __CUDA_ARCH__, kernels/common/adamw_math.h) with host powf (what
// the CPU kernel and the float64 model use), for common betas and t = 1..10^6.
// Prints one line per pair whose bias correction 1 - beta^t differs:
// "beta t host device" (hex floats, exact), then "total N".
#include <cmath>
#include <cstdio>

int main() {
  const float betas[] = {0.5f, 0.8f, 0.9f, 0.95f, 0.98f, 0.99f, 0.995f, 0.997f, 0.999f, 0.9995f, 0.9999f};
  long total = 0;
  for (float b : betas)
    for (int t = 1; t <= 1000000; ++t, ++total) {
      const float host = powf(b, static_cast<float>(t));
      const float device = static_cast<float>(pow(static_cast<double>(b), static_cast<double>(t)));
      if (1.0f - host != 1.0f - device) std::printf("%a %d %a %a\n", b, t, host, device);
    }
  std::printf("total %ld\n", total);
  return 0;
}
