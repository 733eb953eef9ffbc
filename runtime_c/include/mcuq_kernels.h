/* All public mcuq kernels, one header per op family. */
#ifndef MCUQ_KERNELS_H
#define MCUQ_KERNELS_H

#include "mcuq_conv.h"
#include "mcuq_elementwise.h"
#include "mcuq_pool.h"
#include "mcuq_shape.h"
#include "mcuq_softmax.h"

#endif /* MCUQ_KERNELS_H */
