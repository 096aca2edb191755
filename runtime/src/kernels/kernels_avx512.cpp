// avx512 kernels. Placeholder until the avx512 path lands: the portable table.
#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels::detail {

const Kernels& avx512_kernels() noexcept { return portable_kernels(); }

}  // namespace pylon::runtime::kernels::detail
