#ifndef MCUQ_ELEMENTWISE_H
#define MCUQ_ELEMENTWISE_H
#include "mcuq.h"
#endif
