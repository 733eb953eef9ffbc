#ifndef MCUQ_SHAPE_H
#define MCUQ_SHAPE_H
#include "mcuq.h"
#endif
