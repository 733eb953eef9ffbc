/* mcuq runtime: the public API, one header per op family (all include mcuq_types.h, none includes this one).
 *
 * Include this header, or only the family headers you call. Generated model code includes it.
 */
#ifndef MCUQ_H
#define MCUQ_H

#include "mcuq_types.h"

#include "mcuq_band.h"
#include "mcuq_conv.h"
#include "mcuq_elementwise.h"
#include "mcuq_lowbit.h"
#include "mcuq_pool.h"
#include "mcuq_shape.h"
#include "mcuq_softmax.h"

#endif /* MCUQ_H */
