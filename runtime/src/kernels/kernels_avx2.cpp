// avx2 kernels. Placeholder until the avx2 path lands: the portable table.
#include "kernels/kernel_tables.h"

namespace pylon::runtime::kernels::detail {

const Kernels& avx2_kernels() noexcept { return portable_kernels(); }

}  // namespace pylon::runtime::kernels::detail
