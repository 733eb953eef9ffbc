#ifndef MCUQ_POOL_H
#define MCUQ_POOL_H
#include "mcuq.h"
#endif
