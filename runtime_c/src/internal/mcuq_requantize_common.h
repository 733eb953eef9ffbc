/* QUANTIZE between int8 and int16 (TFLite's reference_ops::Requantize): internal to the runtime. The three kernels
 * (int16 -> int16, int8 -> int16, int16 -> int8) differ only in their element types. */
#ifndef MCUQ_REQUANTIZE_COMMON_H
#define MCUQ_REQUANTIZE_COMMON_H

#include "mcuq_elementwise.h"
#include "mcuq_fixedpoint.h"
#include "mcuq_util.h"

/* MCUQ_ERR_ARGUMENT for a NULL pointer, a negative size, a shift outside [-31, 30], a zero point outside
 * [in_min, in_max] (input) or [out_min, out_max] (output), activation bounds outside the output type or an empty
 * activation range. */
static inline mcuq_status mcuq_requantize_check(const mcuq_requantize_params *p, const void *input, const void *output,
                                                int32_t in_min, int32_t in_max, int32_t out_min, int32_t out_max)
{
    if (p == NULL || input == NULL || output == NULL) {
        return MCUQ_ERR_ARGUMENT;
    }
    if (p->size < 0 || p->shift < -31 || p->shift > 30 || p->input_zp < in_min || p->input_zp > in_max ||
        p->output_zp < out_min || p->output_zp > out_max || p->activation.min < out_min ||
        p->activation.max > out_max || p->activation.min > p->activation.max) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

/* One element: clamp(MultiplyByQuantizedMultiplier(x - input_zp, multiplier, shift) + output_zp, activation). */
static inline int32_t mcuq_requantize_one(const mcuq_requantize_params *p, int32_t x)
{
    const int32_t raw = mcuq_multiply_by_quantized_multiplier(x - p->input_zp, p->multiplier, p->shift) + p->output_zp;
    return MCUQ_CLAMP(raw, p->activation.min, p->activation.max);
}

#endif /* MCUQ_REQUANTIZE_COMMON_H */
